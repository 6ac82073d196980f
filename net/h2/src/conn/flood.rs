//! Flood defenses (RFC 9113 10.5), counted in frames; the limits are described in the
//! module docs of `conn`.

use crate::error::ConnectionError;

use super::Connection;

#[derive(Default)]
pub(super) struct Flood {
    frames_in_window: u32,
    pub(super) resets_in_window: u32,
    empty_in_window: u32,
    pub(super) replies_since_drain: u32,
}

impl Connection {
    pub(super) fn count_frame(&mut self) {
        self.flood.frames_in_window += 1;
        if self.flood.frames_in_window >= self.config.flood_window_frames {
            self.flood.frames_in_window = 0;
            self.flood.resets_in_window = 0;
            self.flood.empty_in_window = 0;
        }
    }

    /// CVE-2019-9518: frames that carry nothing cost processing for no progress.
    pub(super) fn count_empty(&mut self, what: &str) -> Result<(), ConnectionError> {
        self.flood.empty_in_window += 1;
        if self.flood.empty_in_window > self.config.max_empty_frames_per_window {
            return Err(ConnectionError::calm(format!(
                "{} frames without content within {} frames (last: {what})",
                self.flood.empty_in_window, self.config.flood_window_frames
            )));
        }
        Ok(())
    }

    /// A reply the peer made us queue (PING/SETTINGS ACK, RST_STREAM, 431).
    pub(super) fn count_reply(&mut self) -> Result<(), ConnectionError> {
        self.flood.replies_since_drain += 1;
        if self.flood.replies_since_drain > self.config.max_control_frames_per_window {
            return Err(ConnectionError::calm(format!(
                "{} replies (PING/SETTINGS ACK, RST_STREAM) queued while {} bytes of output \
                 wait to be read",
                self.flood.replies_since_drain,
                self.out.len()
            )));
        }
        Ok(())
    }
}
