//! Error codes (RFC 9113 7) and the two classes of protocol error (RFC 9113 5.4).
//!
//! Every error the crate detects in peer input is one of:
//!
//! - [`ConnectionError`]: the connection cannot go on (RFC 9113 5.4.1). Answered with a
//!   GOAWAY carrying `code` and `reason` as debug data; the shell then flushes and closes.
//! - [`StreamError`]: one stream is affected (RFC 9113 5.4.2). Answered with RST_STREAM
//!   carrying `code`; the rest of the connection goes on.
//!
//! [`H2Error`] joins the two, and `Connection::handle_error` (conn.rs) is the one exhaustive
//! mapping from an error to the frame that answers it.

use std::fmt;

/// An HTTP/2 error code (RFC 9113 7), as carried by RST_STREAM and GOAWAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0x0: not an error, e.g. a graceful GOAWAY.
    NoError,
    /// 0x1: an unspecific protocol error.
    ProtocolError,
    /// 0x2: an unexpected internal error.
    InternalError,
    /// 0x3: the peer violated the flow-control protocol.
    FlowControlError,
    /// 0x4: SETTINGS were not acknowledged in time.
    SettingsTimeout,
    /// 0x5: a frame arrived after a stream was half-closed.
    StreamClosed,
    /// 0x6: a frame with an invalid size.
    FrameSizeError,
    /// 0x7: the stream was refused before any application processing (safe to retry).
    RefusedStream,
    /// 0x8: the stream is no longer needed.
    Cancel,
    /// 0x9: the HPACK context cannot be maintained.
    CompressionError,
    /// 0xa: a CONNECT tunnel was reset or closed abnormally.
    ConnectError,
    /// 0xb: the peer is generating excessive load.
    EnhanceYourCalm,
    /// 0xc: the transport does not meet minimum security requirements.
    InadequateSecurity,
    /// 0xd: the request must be retried over HTTP/1.1.
    Http11Required,
    /// A code this crate does not define. RFC 9113 7: "Unknown or unsupported error codes
    /// MUST NOT trigger any special behavior."
    Unknown(u32),
}

impl ErrorCode {
    /// Maps a wire value to a code; values outside 0x0..=0xd become [`ErrorCode::Unknown`].
    pub const fn from_u32(value: u32) -> ErrorCode {
        match value {
            0x0 => ErrorCode::NoError,
            0x1 => ErrorCode::ProtocolError,
            0x2 => ErrorCode::InternalError,
            0x3 => ErrorCode::FlowControlError,
            0x4 => ErrorCode::SettingsTimeout,
            0x5 => ErrorCode::StreamClosed,
            0x6 => ErrorCode::FrameSizeError,
            0x7 => ErrorCode::RefusedStream,
            0x8 => ErrorCode::Cancel,
            0x9 => ErrorCode::CompressionError,
            0xa => ErrorCode::ConnectError,
            0xb => ErrorCode::EnhanceYourCalm,
            0xc => ErrorCode::InadequateSecurity,
            0xd => ErrorCode::Http11Required,
            other => ErrorCode::Unknown(other),
        }
    }

    /// The wire value. `from_u32(code.to_u32()) == code` for every code except an
    /// `Unknown` holding a defined value, which maps back to the defined variant.
    pub const fn to_u32(self) -> u32 {
        match self {
            ErrorCode::NoError => 0x0,
            ErrorCode::ProtocolError => 0x1,
            ErrorCode::InternalError => 0x2,
            ErrorCode::FlowControlError => 0x3,
            ErrorCode::SettingsTimeout => 0x4,
            ErrorCode::StreamClosed => 0x5,
            ErrorCode::FrameSizeError => 0x6,
            ErrorCode::RefusedStream => 0x7,
            ErrorCode::Cancel => 0x8,
            ErrorCode::CompressionError => 0x9,
            ErrorCode::ConnectError => 0xa,
            ErrorCode::EnhanceYourCalm => 0xb,
            ErrorCode::InadequateSecurity => 0xc,
            ErrorCode::Http11Required => 0xd,
            ErrorCode::Unknown(value) => value,
        }
    }

    /// The name used in RFC 9113 7, e.g. `"PROTOCOL_ERROR"`.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::NoError => "NO_ERROR",
            ErrorCode::ProtocolError => "PROTOCOL_ERROR",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::FlowControlError => "FLOW_CONTROL_ERROR",
            ErrorCode::SettingsTimeout => "SETTINGS_TIMEOUT",
            ErrorCode::StreamClosed => "STREAM_CLOSED",
            ErrorCode::FrameSizeError => "FRAME_SIZE_ERROR",
            ErrorCode::RefusedStream => "REFUSED_STREAM",
            ErrorCode::Cancel => "CANCEL",
            ErrorCode::CompressionError => "COMPRESSION_ERROR",
            ErrorCode::ConnectError => "CONNECT_ERROR",
            ErrorCode::EnhanceYourCalm => "ENHANCE_YOUR_CALM",
            ErrorCode::InadequateSecurity => "INADEQUATE_SECURITY",
            ErrorCode::Http11Required => "HTTP_1_1_REQUIRED",
            ErrorCode::Unknown(_) => "UNKNOWN",
        }
    }
}

impl From<u32> for ErrorCode {
    fn from(value: u32) -> ErrorCode {
        ErrorCode::from_u32(value)
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> u32 {
        code.to_u32()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Unknown(value) => write!(f, "UNKNOWN(0x{value:x})"),
            known => f.write_str(known.name()),
        }
    }
}

/// An error that ends the connection (RFC 9113 5.4.1): answered with GOAWAY(`code`), with
/// `reason` as the debug data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError {
    pub code: ErrorCode,
    /// What was wrong, in ASCII, for the GOAWAY debug data and logs.
    pub reason: String,
}

impl ConnectionError {
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> ConnectionError {
        ConnectionError {
            code,
            reason: reason.into(),
        }
    }

    pub fn protocol(reason: impl Into<String>) -> ConnectionError {
        ConnectionError::new(ErrorCode::ProtocolError, reason)
    }

    pub fn frame_size(reason: impl Into<String>) -> ConnectionError {
        ConnectionError::new(ErrorCode::FrameSizeError, reason)
    }

    pub fn flow_control(reason: impl Into<String>) -> ConnectionError {
        ConnectionError::new(ErrorCode::FlowControlError, reason)
    }

    pub fn calm(reason: impl Into<String>) -> ConnectionError {
        ConnectionError::new(ErrorCode::EnhanceYourCalm, reason)
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection error {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for ConnectionError {}

/// An error confined to one stream (RFC 9113 5.4.2): answered with RST_STREAM(`code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub stream_id: u32,
    pub code: ErrorCode,
    /// What was wrong (not sent on the wire: RST_STREAM has no debug data).
    pub reason: String,
}

impl StreamError {
    pub fn new(stream_id: u32, code: ErrorCode, reason: impl Into<String>) -> StreamError {
        StreamError {
            stream_id,
            code,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream {} error {}: {}",
            self.stream_id, self.code, self.reason
        )
    }
}

impl std::error::Error for StreamError {}

/// A protocol error of either class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H2Error {
    Connection(ConnectionError),
    Stream(StreamError),
}

impl From<ConnectionError> for H2Error {
    fn from(error: ConnectionError) -> H2Error {
        H2Error::Connection(error)
    }
}

impl From<StreamError> for H2Error {
    fn from(error: StreamError) -> H2Error {
        H2Error::Stream(error)
    }
}

impl fmt::Display for H2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            H2Error::Connection(error) => error.fmt(f),
            H2Error::Stream(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for H2Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for value in 0..=0xdu32 {
            let code = ErrorCode::from_u32(value);
            assert!(!matches!(code, ErrorCode::Unknown(_)), "0x{value:x}");
            assert_eq!(code.to_u32(), value);
            assert_eq!(u32::from(ErrorCode::from(value)), value);
        }
        assert_eq!(ErrorCode::from_u32(0xe), ErrorCode::Unknown(0xe));
        assert_eq!(ErrorCode::Unknown(0xdead).to_u32(), 0xdead);
        assert_eq!(ErrorCode::Unknown(0xe).to_string(), "UNKNOWN(0xe)");
        assert_eq!(ErrorCode::EnhanceYourCalm.to_string(), "ENHANCE_YOUR_CALM");
    }
}
