//! The static table (RFC 7541 Appendix A) and the dynamic table (RFC 7541 2.3.2, 4).
//!
//! ```text
//! <----------  Index Address Space ---------->
//! <-- Static  Table -->  <-- Dynamic Table -->
//! +---+-----------+---+  +---+-----------+---+
//! | 1 |    ...    | 61|  | 62|    ...    |62+n-1
//! +---+-----------+---+  +---+-----------+---+
//!                        ^ newest             ^ oldest, evicted first
//! ```
//!
//! The size of an entry is `name.len() + value.len() + 32`; the table's size is the sum over
//! its entries and never exceeds its maximum size.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::VecDeque;

/// Per-entry overhead counted in table and header-list sizes (RFC 7541 4.1, RFC 9113 6.5.2).
pub const ENTRY_OVERHEAD_BYTES: usize = 32;

/// Size of a field as counted by the dynamic table and SETTINGS_MAX_HEADER_LIST_SIZE.
pub(crate) fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len()
        .saturating_add(value.len())
        .saturating_add(ENTRY_OVERHEAD_BYTES)
}

/// RFC 7541 Appendix A; index `i` of the HPACK address space is `STATIC_TABLE[i - 1]`.
pub(crate) const STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Number of static entries; dynamic indices start at `STATIC_LEN + 1`.
pub(crate) const STATIC_LEN: usize = STATIC_TABLE.len();

/// Static entry at HPACK index `index` (1-based).
pub(crate) fn static_entry(index: usize) -> Option<(&'static [u8], &'static [u8])> {
    STATIC_TABLE.get(index.checked_sub(1)?).copied()
}

/// Static-table matches for a field: the index of an exact (name, value) match, and the
/// lowest index with the same name.
pub(crate) fn static_find(name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
    let mut name_index = None;
    for (i, &(n, v)) in STATIC_TABLE.iter().enumerate() {
        if n == name {
            name_index.get_or_insert(i + 1);
            if v == value {
                return (Some(i + 1), name_index);
            }
        } else if name_index.is_some() {
            // Entries with the same name are adjacent.
            break;
        }
    }
    (None, name_index)
}

/// A FIFO of header fields bounded by size in bytes, newest first.
#[derive(Debug)]
pub(crate) struct DynamicTable {
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Sum of `entry_size` over `entries`.
    size: usize,
    /// Current maximum size, as last set by a dynamic table size update.
    size_max: usize,
}

impl DynamicTable {
    pub(crate) fn new(size_max: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            size_max,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn size_max(&self) -> usize {
        self.size_max
    }

    /// Entry `i` counted from the newest (0-based; HPACK index `STATIC_LEN + 1 + i`).
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.entries
            .get(i)
            .map(|(name, value)| (name.as_slice(), value.as_slice()))
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_slice(), value.as_slice()))
    }

    /// Changes the maximum size, evicting the oldest entries until the table fits.
    pub(crate) fn set_size_max(&mut self, size_max: usize) {
        self.size_max = size_max;
        self.evict_to(size_max);
    }

    /// Adds an entry, evicting old ones to make room. An entry larger than the maximum size
    /// empties the table and is not added (RFC 7541 4.4).
    pub(crate) fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = entry_size(&name, &value);
        if size > self.size_max {
            self.clear();
            return;
        }
        self.evict_to(self.size_max - size);
        self.entries.push_front((name, value));
        self.size += size;
        assert!(self.size <= self.size_max);
    }

    /// Empties the table: what inserting an entry larger than the maximum size does.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.size = 0;
    }

    /// Indices (0-based, newest first) of the newest exact match and of the newest entry
    /// with the same name.
    pub(crate) fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_index = None;
        for (i, (n, v)) in self.entries.iter().enumerate() {
            if n.as_slice() == name {
                name_index.get_or_insert(i);
                if v.as_slice() == value {
                    return (Some(i), name_index);
                }
            }
        }
        (None, name_index)
    }

    fn evict_to(&mut self, size_target: usize) {
        while self.size > size_target {
            let Some((name, value)) = self.entries.pop_back() else {
                unreachable!("dynamic table size {} with no entries", self.size);
            };
            self.size -= entry_size(&name, &value);
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn static_table_spot_checks() {
        assert_eq!(static_entry(0), None);
        assert_eq!(static_entry(1), Some((&b":authority"[..], &b""[..])));
        assert_eq!(static_entry(2), Some((&b":method"[..], &b"GET"[..])));
        assert_eq!(static_entry(8), Some((&b":status"[..], &b"200"[..])));
        assert_eq!(
            static_entry(16),
            Some((&b"accept-encoding"[..], &b"gzip, deflate"[..]))
        );
        assert_eq!(static_entry(24).unwrap().0, b"cache-control");
        assert_eq!(static_entry(31).unwrap().0, b"content-type");
        assert_eq!(static_entry(33).unwrap().0, b"date");
        assert_eq!(static_entry(46).unwrap().0, b"location");
        assert_eq!(static_entry(55).unwrap().0, b"set-cookie");
        assert_eq!(static_entry(61), Some((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(static_entry(62), None);
    }

    #[test]
    fn static_names_are_lowercase_and_same_names_adjacent() {
        for (i, &(name, _)) in STATIC_TABLE.iter().enumerate() {
            assert!(!name.iter().any(u8::is_ascii_uppercase));
            // A name never reappears after a different name (static_find relies on this).
            if let Some(later) = STATIC_TABLE[i + 1..].iter().position(|&(n, _)| n == name) {
                assert_eq!(later, 0, "{:?}", std::str::from_utf8(name));
            }
        }
    }

    #[test]
    fn static_find_matches() {
        assert_eq!(static_find(b":status", b"404"), (Some(13), Some(8)));
        assert_eq!(static_find(b":status", b"302"), (None, Some(8)));
        assert_eq!(static_find(b"content-type", b""), (Some(31), Some(31)));
        assert_eq!(
            static_find(b"content-type", b"application/grpc"),
            (None, Some(31))
        );
        assert_eq!(static_find(b"grpc-status", b"0"), (None, None));
    }

    #[test]
    fn eviction_and_size_accounting() {
        let mut table = DynamicTable::new(100);
        table.insert(b"aaaa".to_vec(), b"1111".to_vec()); // 40
        table.insert(b"bbbb".to_vec(), b"2222".to_vec()); // 40
        assert_eq!((table.len(), table.size()), (2, 80));
        table.insert(b"cccc".to_vec(), b"3333".to_vec()); // evicts aaaa
        assert_eq!((table.len(), table.size()), (2, 80));
        assert_eq!(table.get(0), Some((&b"cccc"[..], &b"3333"[..])));
        assert_eq!(table.get(1), Some((&b"bbbb"[..], &b"2222"[..])));
        assert_eq!(table.get(2), None);
        assert_eq!(table.find(b"bbbb", b"2222"), (Some(1), Some(1)));
        assert_eq!(table.find(b"bbbb", b"x"), (None, Some(1)));

        table.set_size_max(50);
        assert_eq!((table.len(), table.size()), (1, 40));
        table.insert(vec![b'x'; 10], vec![b'y'; 9]); // 51 > 50: empties the table
        assert_eq!((table.len(), table.size()), (0, 0));
        table.insert(vec![b'x'; 10], vec![b'y'; 8]); // exactly 50 fits
        assert_eq!((table.len(), table.size()), (1, 50));
        table.set_size_max(0);
        assert_eq!((table.len(), table.size()), (0, 0));
    }
}
