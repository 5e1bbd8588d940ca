//! `bench`: see the `concord_bench` library.

fn main() -> std::process::ExitCode {
    concord_bench::main()
}
