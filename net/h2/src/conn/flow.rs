//! Flow control (RFC 9113 5.2, 6.9): our send windows (WINDOW_UPDATE, changes of
//! SETTINGS_INITIAL_WINDOW_SIZE) and the receive windows, whose credit is returned as the
//! application takes events.

use crate::error::{ConnectionError, ErrorCode, H2Error, StreamError};
use crate::frame::WINDOW_SIZE_MAX;
use crate::settings::INITIAL_WINDOW_SIZE_DEFAULT;

use super::output::window_update;
use super::Connection;

impl Connection {
    pub(super) fn on_window_update(
        &mut self,
        stream_id: u32,
        increment: u32,
    ) -> Result<(), H2Error> {
        if stream_id == 0 {
            // RFC 9113 6.9: "errors on the connection flow-control window MUST be treated as
            // a connection error (Section 5.4.1)."
            if increment == 0 {
                return Err(ConnectionError::protocol(
                    "WINDOW_UPDATE with an increment of 0 on the connection",
                )
                .into());
            }
            // RFC 9113 6.9.1: "A sender MUST NOT allow a flow-control window to exceed 2^31-1
            // octets. ... for the connection, a GOAWAY frame with an error code of
            // FLOW_CONTROL_ERROR is sent."
            let window = self.conn_send_window + i64::from(increment);
            if window > i64::from(WINDOW_SIZE_MAX) {
                return Err(ConnectionError::flow_control(format!(
                    "WINDOW_UPDATE of {increment} makes the connection window {window}, above \
                     2^31-1"
                ))
                .into());
            }
            self.conn_send_window = window;
            return Ok(());
        }
        if self.is_idle_stream(stream_id) {
            return Err(ConnectionError::protocol(format!(
                "WINDOW_UPDATE on idle stream {stream_id}"
            ))
            .into());
        }
        // RFC 9113 6.9: a WINDOW_UPDATE on a half-closed (remote) or closed stream: "A
        // receiver MUST NOT treat this as an error".
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return Ok(());
        };
        // RFC 9113 6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a
        // flow-control window increment of 0 as a stream error (Section 5.4.2) of type
        // PROTOCOL_ERROR".
        if increment == 0 {
            return Err(StreamError::new(
                stream_id,
                ErrorCode::ProtocolError,
                format!("WINDOW_UPDATE with an increment of 0 on stream {stream_id}"),
            )
            .into());
        }
        // RFC 9113 6.9.1: "For streams, the sender sends a RST_STREAM with an error code of
        // FLOW_CONTROL_ERROR".
        let window = stream.send_window + i64::from(increment);
        if window > i64::from(WINDOW_SIZE_MAX) {
            return Err(StreamError::new(
                stream_id,
                ErrorCode::FlowControlError,
                format!("WINDOW_UPDATE makes the window of stream {stream_id} {window}"),
            )
            .into());
        }
        stream.send_window = window;
        if window > 0 {
            self.enqueue(stream_id);
        }
        Ok(())
    }

    /// RFC 9113 6.9.2: "When the value of SETTINGS_INITIAL_WINDOW_SIZE changes, a receiver
    /// MUST adjust the size of all stream flow-control windows that it maintains by the
    /// difference between the new value and the old value." and "An endpoint MUST treat a
    /// change to SETTINGS_INITIAL_WINDOW_SIZE that causes any flow-control window to exceed
    /// the maximum size as a connection error (Section 5.4.1) of type FLOW_CONTROL_ERROR."
    pub(super) fn adjust_send_windows(&mut self, delta: i64) -> Result<(), ConnectionError> {
        if delta == 0 {
            return Ok(());
        }
        let mut unblocked = Vec::new();
        for (&id, stream) in &mut self.streams {
            let was_blocked = stream.send_window <= 0;
            stream.send_window += delta;
            if stream.send_window > i64::from(WINDOW_SIZE_MAX) {
                return Err(ConnectionError::flow_control(format!(
                    "SETTINGS_INITIAL_WINDOW_SIZE change of {delta} makes the window of stream \
                     {id} {}, above 2^31-1",
                    stream.send_window
                )));
            }
            if was_blocked && stream.send_window > 0 {
                unblocked.push(id);
            }
        }
        unblocked.sort_unstable();
        for id in unblocked {
            self.enqueue(id);
        }
        Ok(())
    }

    /// Our SETTINGS now apply. Until then the client may have used the default stream
    /// window (RFC 9113 6.9.2), so a configured window below it only bites from here on.
    pub(super) fn on_settings_acked(&mut self) {
        let shrink =
            i64::from(INITIAL_WINDOW_SIZE_DEFAULT) - i64::from(self.config.initial_window_size);
        if shrink > 0 {
            for stream in self.streams.values_mut() {
                stream.recv_window -= shrink;
            }
        }
    }

    /// The receive window a new stream starts with.
    pub(super) fn local_initial_window(&self) -> i64 {
        let configured = i64::from(self.config.initial_window_size);
        if self.settings_acked {
            configured
        } else {
            configured.max(i64::from(INITIAL_WINDOW_SIZE_DEFAULT))
        }
    }

    /// Returns `credit` octets consumed on a stream, with WINDOW_UPDATE once half a window
    /// has been consumed (RFC 9113 6.9.1: avoid "sending WINDOW_UPDATE frames with very
    /// small increments").
    pub(super) fn release_credit(&mut self, stream_id: u32, credit: u32) {
        if credit == 0 || self.failed.is_some() {
            return;
        }
        self.release_conn_credit(credit);
        let half_window = (self.config.initial_window_size / 2).max(1);
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        // Half-closed (remote): the client sends no more, no credit needed (RFC 9113 5.1).
        if stream.remote_closed {
            return;
        }
        stream.recv_unacked += credit;
        if stream.recv_unacked >= half_window {
            let increment = std::mem::take(&mut stream.recv_unacked);
            stream.recv_window += i64::from(increment);
            debug_assert!(stream.recv_window <= i64::from(WINDOW_SIZE_MAX));
            window_update(&mut self.out, stream_id, increment);
        }
    }

    pub(super) fn release_conn_credit(&mut self, credit: u32) {
        if credit == 0 || self.failed.is_some() {
            return;
        }
        self.conn_recv_unacked += credit;
        if self.conn_recv_unacked >= (self.config.connection_window_size / 2).max(1) {
            let increment = std::mem::take(&mut self.conn_recv_unacked);
            self.conn_recv_window += i64::from(increment);
            debug_assert!(self.conn_recv_window <= i64::from(self.config.connection_window_size));
            window_update(&mut self.out, 0, increment);
        }
    }
}
