//! WAL record and segment format (sans-IO).
