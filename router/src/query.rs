//! The gateway URL's query: `v`, `encoding` and `compress`; anything else is ignored.

use concord_gateway_shard::{Compression, ConnectParams};

/// Reads the parameters the gateway cares about from a raw query string.
pub(crate) fn connect_params(query: Option<&str>) -> ConnectParams {
    let mut params = ConnectParams::default();
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "v" => params.version = Some(value.to_owned()),
            "encoding" => params.encoding = Some(value.to_owned()),
            "compress" => params.compression = Compression::from_query(value),
            _ => {}
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_each_library_sends() {
        let p = connect_params(Some("v=10&encoding=json&compress=zlib-stream"));
        assert_eq!(p.version.as_deref(), Some("10"));
        assert_eq!(p.encoding.as_deref(), Some("json"));
        assert_eq!(p.compression, Compression::ZlibStream);
        // serenity: `?v=10` only.
        let p = connect_params(Some("v=10"));
        assert_eq!((p.encoding, p.compression), (None, Compression::None));
        assert_eq!(
            connect_params(Some("compress=zstd-stream&x=1")).compression,
            Compression::ZstdStream
        );
        assert_eq!(connect_params(None), ConnectParams::default());
    }
}
