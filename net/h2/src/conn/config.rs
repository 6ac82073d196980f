//! [`ServerConfig`]: the limits and advertised settings of a server connection, with
//! compile-time checks of how the defaults relate.

use crate::frame::{FRAME_SIZE_DEFAULT, FRAME_SIZE_MAX, WINDOW_SIZE_MAX};
use crate::settings::{HEADER_TABLE_SIZE_DEFAULT, INITIAL_WINDOW_SIZE_DEFAULT};

/// Limits and advertised settings of a server connection. The defaults suit a gRPC ingest
/// server; see each field for what it bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce: a HEADERS beyond it is
    /// refused with RST_STREAM(REFUSED_STREAM) (RFC 9113 5.1.2).
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise: the receive window of each stream.
    pub initial_window_size: u32,
    /// Our connection receive window, raised from 65,535 by a WINDOW_UPDATE sent right after
    /// our SETTINGS.
    pub connection_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE we advertise; larger frames are a FRAME_SIZE_ERROR. Must be
    /// within 16,384..=16,777,215.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce (decoded name + value + 32 per
    /// field). A request over it is answered with a 431 response; trailers over it reset the
    /// stream with ENHANCE_YOUR_CALM. The encoded block may be at most twice this.
    pub max_header_list_bytes: u32,
    /// SETTINGS_HEADER_TABLE_SIZE we advertise: the HPACK decoder's dynamic table bound.
    pub header_table_size: u32,
    /// Request body bytes delivered per stream. The DATA frame that crosses the limit is
    /// still delivered (so the application sees the overflow and can answer, e.g. gRPC
    /// RESOURCE_EXHAUSTED); any DATA after it resets the stream with ENHANCE_YOUR_CALM.
    pub max_request_body_bytes: usize,
    /// Streams the client may reset before their response ended, per flood window.
    pub max_resets_per_window: u32,
    /// Replies (PING/SETTINGS ACK, RST_STREAM, 431) queued between two `take_output` calls.
    pub max_control_frames_per_window: u32,
    /// Frames without content (see the module docs), per flood window.
    pub max_empty_frames_per_window: u32,
    /// CONTINUATION frames in one header block.
    pub max_continuation_frames: u32,
    /// Received frames per flood window.
    pub flood_window_frames: u32,
    /// DATA octets `take_output` frames per call (it may go over by one frame).
    pub max_output_buffer_bytes: usize,
}

impl ServerConfig {
    /// The defaults: 100 streams, 1 MiB stream / 4 MiB connection windows, 16 KiB frames,
    /// 16 KiB header lists, 16 MiB request bodies.
    pub const DEFAULT: ServerConfig = ServerConfig {
        max_concurrent_streams: 100,
        initial_window_size: 1 << 20,
        connection_window_size: 4 << 20,
        max_frame_size: FRAME_SIZE_DEFAULT,
        max_header_list_bytes: 16 << 10,
        header_table_size: HEADER_TABLE_SIZE_DEFAULT,
        max_request_body_bytes: 16 << 20,
        max_resets_per_window: 100,
        max_control_frames_per_window: 1_000,
        max_empty_frames_per_window: 100,
        max_continuation_frames: 32,
        flood_window_frames: 1_000,
        max_output_buffer_bytes: 1 << 20,
    };

    /// Panics on a configuration that breaks RFC 9113 ranges: a bug, not input.
    pub(super) fn check(&self) {
        assert!(
            (FRAME_SIZE_DEFAULT..=FRAME_SIZE_MAX).contains(&self.max_frame_size),
            "max_frame_size {} outside 16384..=16777215",
            self.max_frame_size
        );
        assert!(self.initial_window_size <= WINDOW_SIZE_MAX);
        assert!(
            (INITIAL_WINDOW_SIZE_DEFAULT..=WINDOW_SIZE_MAX).contains(&self.connection_window_size),
            "connection_window_size {} outside 65535..=2^31-1",
            self.connection_window_size
        );
        assert!(self.max_header_list_bytes > 0);
        assert!(self.flood_window_frames > 0);
        assert!(self.max_output_buffer_bytes > 0);
    }
}

const _: () = {
    let c = ServerConfig::DEFAULT;
    assert!(c.max_frame_size >= FRAME_SIZE_DEFAULT && c.max_frame_size <= FRAME_SIZE_MAX);
    assert!(c.initial_window_size <= WINDOW_SIZE_MAX);
    assert!(c.connection_window_size >= INITIAL_WINDOW_SIZE_DEFAULT);
    assert!(c.connection_window_size <= WINDOW_SIZE_MAX);
    // A whole stream window fits in the connection window, so one stream can use its window.
    assert!(c.initial_window_size <= c.connection_window_size);
    // The header block cap (2x the list) holds at least one full-size HEADERS frame.
    assert!(2 * c.max_header_list_bytes >= FRAME_SIZE_DEFAULT);
    assert!(c.flood_window_frames > c.max_resets_per_window);
    assert!(c.flood_window_frames > c.max_empty_frames_per_window);
};

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        ServerConfig::default().check();
    }
}
