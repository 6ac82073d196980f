//! The protobuf tag walk: a yardstick for OTLP decoding.
//!
//! It reads every tag of an `ExportTraceServiceRequest` down to the fields of each span
//! (request -> `ResourceSpans` -> `ScopeSpans` -> `Span`), skipping values by their wire
//! type, and counts the spans. It checks nothing else, copies nothing and allocates nothing:
//! any decoder that looks at each span field must do at least this much work, so its MB/s
//! on one core is the ceiling that `split_export` (which also validates IDs, UTF-8 and
//! attribute values and copies each span into its trace's batch) and prost are read
//! against.

/// Spans in `request`, or `None` if the wire format is broken.
pub fn count_spans(request: &[u8]) -> Option<u64> {
    let mut spans = 0u64;
    walk(request, &mut |number, value| {
        if number == 1 {
            walk_resource_spans(value?, &mut spans)?;
        }
        Some(())
    })?;
    Some(spans)
}

fn walk_resource_spans(bytes: &[u8], spans: &mut u64) -> Option<()> {
    walk(bytes, &mut |number, value| {
        if number == 2 {
            walk_scope_spans(value?, spans)?;
        }
        Some(())
    })
}

fn walk_scope_spans(bytes: &[u8], spans: &mut u64) -> Option<()> {
    walk(bytes, &mut |number, value| {
        if number == 2 {
            *spans += 1;
            // Every span field's tag, values skipped.
            walk(value?, &mut |_, _| Some(()))?;
        }
        Some(())
    })
}

/// Calls `visit(field number, Some(bytes) for length-delimited values)` for each field.
fn walk(mut bytes: &[u8], visit: &mut impl FnMut(u64, Option<&[u8]>) -> Option<()>) -> Option<()> {
    while !bytes.is_empty() {
        let tag = varint(&mut bytes)?;
        let number = tag >> 3;
        match tag & 7 {
            0 => {
                varint(&mut bytes)?;
                visit(number, None)?;
            }
            1 => {
                bytes = bytes.get(8..)?;
                visit(number, None)?;
            }
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                let value = bytes.get(..len)?;
                bytes = bytes.get(len..)?;
                visit(number, Some(value))?;
            }
            5 => {
                bytes = bytes.get(4..)?;
                visit(number, None)?;
            }
            _ => return None,
        }
    }
    Some(())
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *bytes = bytes.get(i + 1..)?;
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_spans_of_generated_requests() {
        let requests = crate::data::otlp_requests(2);
        let counted: u64 = requests
            .messages()
            .map(|m| count_spans(m).expect("valid"))
            .sum();
        assert_eq!(counted, requests.spans);
    }

    #[test]
    fn broken_input_is_none() {
        assert_eq!(count_spans(&[0x0a, 0x05, 0x12]), None);
        assert_eq!(count_spans(&[0xff; 11]), None);
        assert_eq!(count_spans(&[]), Some(0));
    }
}
