//! The one JSON module: every encode/decode goes through here so the SIMD parser stays a feature.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Decode error.
#[derive(Debug, thiserror::Error)]
#[error("invalid json: {0}")]
pub struct JsonError(String);

/// Decodes `T` from a mutable buffer (the SIMD parser works in place).
///
/// # Errors
/// When the bytes are not valid JSON for `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &mut [u8]) -> Result<T, JsonError> {
    #[cfg(feature = "simd-json")]
    {
        simd_json::serde::from_slice(bytes).map_err(|e| JsonError(e.to_string()))
    }
    #[cfg(not(feature = "simd-json"))]
    {
        serde_json::from_slice(bytes).map_err(|e| JsonError(e.to_string()))
    }
}

/// Encodes `value` as JSON bytes.
///
/// # Panics
/// Never for the crate's own types (their `Serialize` impls do not fail).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("wire types serialize infallibly")
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let mut bytes = super::to_vec(&serde_json::json!({"op": 1, "d": null}));
        let back: serde_json::Value = super::from_slice(&mut bytes).unwrap();
        assert_eq!(back["op"], 1);
        let mut bad = b"{op".to_vec();
        assert!(super::from_slice::<serde_json::Value>(&mut bad).is_err());
    }
}
