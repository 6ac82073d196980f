//! OTLP trace splitting (sans-IO).
