//! SETTINGS parameters (RFC 9113 6.5.2) and their validation.

use crate::error::{ConnectionError, ErrorCode};
use crate::frame::{FRAME_SIZE_DEFAULT, FRAME_SIZE_MAX, WINDOW_SIZE_MAX};

/// SETTINGS_HEADER_TABLE_SIZE (0x1).
pub const HEADER_TABLE_SIZE: u16 = 0x1;
/// SETTINGS_ENABLE_PUSH (0x2).
pub const ENABLE_PUSH: u16 = 0x2;
/// SETTINGS_MAX_CONCURRENT_STREAMS (0x3).
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// SETTINGS_INITIAL_WINDOW_SIZE (0x4).
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
/// SETTINGS_MAX_FRAME_SIZE (0x5).
pub const MAX_FRAME_SIZE: u16 = 0x5;
/// SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// HPACK dynamic table size every connection starts with (RFC 9113 4.3.1).
pub const HEADER_TABLE_SIZE_DEFAULT: u32 = 4_096;
/// Initial stream and connection flow-control window (RFC 9113 6.9.2).
pub const INITIAL_WINDOW_SIZE_DEFAULT: u32 = 65_535;

/// One endpoint's settings: the values the other endpoint must honour when sending to it.
/// [`Default`] holds the initial values of RFC 9113 6.5.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub header_table_size: u32,
    pub enable_push: bool,
    /// `None`: unlimited (the initial value).
    pub max_concurrent_streams: Option<u32>,
    pub initial_window_size: u32,
    pub max_frame_size: u32,
    /// `None`: unlimited (the initial value).
    pub max_header_list_size: Option<u32>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            header_table_size: HEADER_TABLE_SIZE_DEFAULT,
            enable_push: true,
            max_concurrent_streams: None,
            initial_window_size: INITIAL_WINDOW_SIZE_DEFAULT,
            max_frame_size: FRAME_SIZE_DEFAULT,
            max_header_list_size: None,
        }
    }
}

impl Settings {
    /// Validates one parameter and stores it (RFC 9113 6.5.2). "An endpoint that receives
    /// a SETTINGS frame with any unknown or unsupported identifier MUST ignore that
    /// setting."
    pub fn apply(&mut self, id: u16, value: u32) -> Result<(), ConnectionError> {
        match id {
            HEADER_TABLE_SIZE => self.header_table_size = value,
            ENABLE_PUSH => {
                // "Any value other than 0 or 1 MUST be treated as a connection error
                // (Section 5.4.1) of type PROTOCOL_ERROR."
                self.enable_push = match value {
                    0 => false,
                    1 => true,
                    other => {
                        return Err(ConnectionError::protocol(format!(
                            "SETTINGS_ENABLE_PUSH of {other}; it must be 0 or 1"
                        )))
                    }
                }
            }
            MAX_CONCURRENT_STREAMS => self.max_concurrent_streams = Some(value),
            INITIAL_WINDOW_SIZE => {
                // "Values above the maximum flow-control window size of 2^31-1 MUST be
                // treated as a connection error (Section 5.4.1) of type
                // FLOW_CONTROL_ERROR."
                if value > WINDOW_SIZE_MAX {
                    return Err(ConnectionError::new(
                        ErrorCode::FlowControlError,
                        format!("SETTINGS_INITIAL_WINDOW_SIZE of {value} exceeds 2^31-1"),
                    ));
                }
                self.initial_window_size = value;
            }
            MAX_FRAME_SIZE => {
                // "The value advertised by an endpoint MUST be between this initial value
                // and the maximum allowed frame size (2^24-1 or 16,777,215 octets),
                // inclusive. Values outside this range MUST be treated as a connection
                // error (Section 5.4.1) of type PROTOCOL_ERROR."
                if !(FRAME_SIZE_DEFAULT..=FRAME_SIZE_MAX).contains(&value) {
                    return Err(ConnectionError::protocol(format!(
                        "SETTINGS_MAX_FRAME_SIZE of {value} is outside 16384..=16777215"
                    )));
                }
                self.max_frame_size = value;
            }
            MAX_HEADER_LIST_SIZE => self.max_header_list_size = Some(value),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let mut settings = Settings::default();
        assert!(settings.apply(ENABLE_PUSH, 0).is_ok());
        assert!(!settings.enable_push);
        assert_eq!(
            settings.apply(ENABLE_PUSH, 2).map_err(|e| e.code),
            Err(ErrorCode::ProtocolError)
        );
        assert_eq!(
            settings
                .apply(INITIAL_WINDOW_SIZE, 1 << 31)
                .map_err(|e| e.code),
            Err(ErrorCode::FlowControlError)
        );
        assert!(settings.apply(INITIAL_WINDOW_SIZE, WINDOW_SIZE_MAX).is_ok());
        assert_eq!(
            settings.apply(MAX_FRAME_SIZE, 16_383).map_err(|e| e.code),
            Err(ErrorCode::ProtocolError)
        );
        assert_eq!(
            settings.apply(MAX_FRAME_SIZE, 1 << 24).map_err(|e| e.code),
            Err(ErrorCode::ProtocolError)
        );
        assert!(settings.apply(MAX_FRAME_SIZE, FRAME_SIZE_MAX).is_ok());
        assert!(
            settings.apply(0xff, 12345).is_ok(),
            "unknown ids are ignored"
        );
        assert_eq!(settings.max_frame_size, FRAME_SIZE_MAX);
        assert_eq!(settings.initial_window_size, WINDOW_SIZE_MAX);
    }
}
