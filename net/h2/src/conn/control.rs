//! Connection-level control: SETTINGS (RFC 9113 6.5), PING (6.7), and the GOAWAY that
//! ends the connection on a connection error (5.4.1, 6.8).

use crate::error::{ConnectionError, H2Error};
use crate::frame::{Frame, SettingsParams};
use crate::settings;

use super::{Connection, Event, PendingEvent};

/// Longest GOAWAY debug string we send.
const GOAWAY_DEBUG_BYTES_MAX: usize = 256;

impl Connection {
    pub(super) fn on_settings(
        &mut self,
        ack: bool,
        params: SettingsParams<'_>,
    ) -> Result<(), H2Error> {
        if ack {
            // RFC 9113 6.5.3: "Upon receiving a SETTINGS frame with the ACK flag set, the
            // sender of the altered settings can rely on the values ... having been applied."
            if self.settings_acked {
                // We send a single SETTINGS frame: a further ACK carries nothing.
                self.count_empty("unsolicited SETTINGS ACK")?;
            } else {
                self.settings_acked = true;
                self.on_settings_acked();
            }
            return Ok(());
        }
        // RFC 9113 6.5.3: "The values in the SETTINGS frame MUST be processed in the order
        // they appear".
        for (id, value) in params.iter() {
            let old_window = self.peer.initial_window_size;
            self.peer.apply(id, value)?;
            match id {
                settings::INITIAL_WINDOW_SIZE => {
                    self.adjust_send_windows(i64::from(value) - i64::from(old_window))?
                }
                settings::HEADER_TABLE_SIZE => self.encoder.set_peer_table_size(value),
                _ => {}
            }
        }
        // RFC 9113 6.5.3: "Once all values have been processed, the recipient MUST
        // immediately emit a SETTINGS frame with the ACK flag set."
        Frame::Settings {
            ack: true,
            params: SettingsParams::default(),
        }
        .encode(&mut self.out);
        self.count_reply()?;
        Ok(())
    }

    pub(super) fn on_ping(&mut self, ack: bool, payload: [u8; 8]) -> Result<(), H2Error> {
        // RFC 9113 6.7: "An endpoint MUST NOT respond to PING frames containing this flag."
        // We send no PINGs, so an ACK is dropped.
        if ack {
            return Ok(());
        }
        // RFC 9113 6.7: "Receivers of a PING frame that does not include an ACK flag MUST
        // send a PING frame with the ACK flag set in response, with an identical frame
        // payload."
        Frame::Ping { ack: true, payload }.encode(&mut self.out);
        self.count_reply()?;
        Ok(())
    }

    /// RFC 9113 5.4.1: "An endpoint that encounters a connection error SHOULD first send a
    /// GOAWAY frame (Section 6.8) with the stream identifier of the last stream that it
    /// successfully received from its peer."
    pub(super) fn fail(&mut self, error: ConnectionError) {
        debug_assert!(self.failed.is_none());
        let mut debug: Vec<u8> = error
            .reason
            .bytes()
            .map(|b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b
                } else {
                    b'?'
                }
            })
            .collect();
        debug.truncate(GOAWAY_DEBUG_BYTES_MAX);
        Frame::GoAway {
            last_stream_id: self.last_processed_id,
            code: error.code,
            debug_data: &debug,
        }
        .encode(&mut self.out);
        let mut ids: Vec<u32> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        for stream_id in ids {
            self.events.push_back(PendingEvent {
                event: Event::StreamReset {
                    stream_id,
                    code: error.code,
                },
                credit: 0,
            });
        }
        self.streams.clear();
        self.send_queue.clear();
        self.header_block = None;
        self.inbuf = Vec::new();
        self.goaway_sent = true;
        self.failed = Some(error);
    }
}
