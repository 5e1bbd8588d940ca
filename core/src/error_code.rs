//! Discord's JSON error codes: one row each, with the HTTP status and default message.
//!
//! API errors name a row; no other code writes a numeric error code.

/// One row of the error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// Discord JSON error code.
    pub code: u32,
    /// HTTP status it is answered with.
    pub status: u16,
    /// Default human message.
    pub message: &'static str,
}

macro_rules! codes {
    ($($name:ident = ($code:expr, $status:expr, $msg:expr);)*) => {
        $(
            #[doc = $msg]
            pub const $name: ErrorCode = ErrorCode { code: $code, status: $status, message: $msg };
        )*
        /// Every row, for lookups and tests.
        pub const ALL: &[ErrorCode] = &[$($name),*];
    };
}

codes! {
    UNAUTHORIZED = (0, 401, "401: Unauthorized");
    NOT_FOUND = (0, 404, "404: Not Found");
    METHOD_NOT_ALLOWED = (0, 405, "405: Method Not Allowed");
    RATE_LIMITED = (0, 429, "You are being rate limited.");
    INTERNAL = (0, 500, "500: Internal Server Error");
    UNAVAILABLE = (0, 503, "503: Service Unavailable");
    UNKNOWN_APPLICATION = (10002, 404, "Unknown Application");
    UNKNOWN_CHANNEL = (10003, 404, "Unknown Channel");
    UNKNOWN_GUILD = (10004, 404, "Unknown Guild");
    UNKNOWN_INVITE = (10006, 404, "Unknown Invite");
    UNKNOWN_MEMBER = (10007, 404, "Unknown Member");
    UNKNOWN_MESSAGE = (10008, 404, "Unknown Message");
    UNKNOWN_USER = (10013, 404, "Unknown User");
    UNKNOWN_EMOJI = (10014, 400, "Unknown Emoji");
    BOTS_FORBIDDEN = (20001, 403, "Bots cannot use this endpoint");
    MAX_GUILDS = (30001, 400, "Maximum number of guilds reached (100)");
    MAX_REACTIONS = (30010, 400, "Maximum number of reactions reached (20)");
    MAX_CHANNELS = (30013, 400, "Maximum number of guild channels reached (500)");
    INVALID_TOKEN_UNAUTHORIZED = (40001, 401, "Unauthorized. Provide a valid token and try again");
    ALREADY_TAKEN = (40002, 400, "That username or email is already taken");
    REQUEST_TOO_LARGE = (40005, 413, "Request entity too large");
    USER_BANNED = (40007, 403, "The user is banned from this guild.");
    MISSING_ACCESS = (50001, 403, "Missing Access");
    NOT_AUTHOR = (50005, 403, "Cannot edit a message authored by another user");
    EMPTY_MESSAGE = (50006, 400, "Cannot send an empty message");
    NON_TEXT_CHANNEL = (50008, 400, "Cannot send messages in a non-text channel");
    MISSING_PERMISSIONS = (50013, 403, "Missing Permissions");
    INVALID_AUTH_TOKEN = (50014, 401, "Invalid authentication token provided");
    INVALID_CHANNEL_TYPE = (50024, 400, "Cannot execute action on this channel type");
    INVALID_FORM_BODY = (50035, 400, "Invalid Form Body");
    INVALID_API_VERSION = (50041, 400, "Invalid API version provided");
    INVALID_JSON = (50109, 400, "The request body contains invalid JSON.");
    OWNER_CANNOT_LEAVE = (50055, 400, "Invalid guild");
    REPLY_WITHOUT_HISTORY = (160002, 403, "Cannot reply without permission to read message history");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_http_statuses() {
        for row in ALL {
            assert!((400..600).contains(&row.status), "{row:?}");
        }
        assert_eq!(MISSING_PERMISSIONS.code, 50013);
        assert_eq!(MISSING_ACCESS.code, 50001);
        assert_eq!(INVALID_FORM_BODY.code, 50035);
    }
}
