//! Each row's code of an interned column, in as few bytes as its codes need.

/// Each row's code, one, two or four bytes a row: the narrowest width that holds every code
/// so far, widened (copied once) when a larger code comes. A title or a program has a handful of
/// values, a phonetic code or a house number some thousands: four bytes a row for each was
/// 0.5 GB of the national linkage's 52 M records. Written by hand: no crate keeps a growing vector
/// of integers that widens itself (as [`crate::extract::StrColumn`]'s offsets do).
#[derive(Clone, Debug)]
pub(crate) enum CodeRows {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Default for CodeRows {
    fn default() -> Self {
        CodeRows::U8(Vec::new())
    }
}

impl CodeRows {
    /// Rows whose codes are `codes`, in the width their largest code needs.
    pub(crate) fn of(codes: &[u32]) -> CodeRows {
        let mut out = CodeRows::default();
        out.widen_for(codes.iter().copied().max().unwrap_or(0), codes.len());
        codes.iter().for_each(|&c| out.push(c));
        out
    }

    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        match self {
            CodeRows::U8(v) => v.len(),
            CodeRows::U16(v) => v.len(),
            CodeRows::U32(v) => v.len(),
        }
    }

    /// True when there are no rows.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`'s code.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> u32 {
        match self {
            CodeRows::U8(v) => u32::from(v[i]),
            CodeRows::U16(v) => u32::from(v[i]),
            CodeRows::U32(v) => v[i],
        }
    }

    /// Every row's code, in order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Makes the rows wide enough for `code`, with room for `room` rows at least.
    fn widen_for(&mut self, code: u32, room: usize) {
        let wide = |len: usize, cap: usize| cap.max(len + 1).max(room);
        match self {
            CodeRows::U8(v) if code > u32::from(u8::MAX) => {
                let cap = wide(v.len(), v.capacity());
                *self = if code > u32::from(u16::MAX) {
                    let mut w = Vec::with_capacity(cap);
                    w.extend(v.iter().map(|&c| u32::from(c)));
                    CodeRows::U32(w)
                } else {
                    let mut w = Vec::with_capacity(cap);
                    w.extend(v.iter().map(|&c| u16::from(c)));
                    CodeRows::U16(w)
                };
            }
            CodeRows::U16(v) if code > u32::from(u16::MAX) => {
                let mut w = Vec::with_capacity(wide(v.len(), v.capacity()));
                w.extend(v.iter().map(|&c| u32::from(c)));
                *self = CodeRows::U32(w);
            }
            _ => {}
        }
    }

    /// Appends a row.
    #[inline]
    pub(crate) fn push(&mut self, code: u32) {
        self.widen_for(code, 0);
        match self {
            // `widen_for` made the rows wide enough for `code`.
            CodeRows::U8(v) => v.push(code as u8),
            CodeRows::U16(v) => v.push(code as u16),
            CodeRows::U32(v) => v.push(code),
        }
    }

    /// Makes room for `rows` more rows, exactly, at the present width.
    pub(crate) fn reserve_exact(&mut self, rows: usize) {
        match self {
            CodeRows::U8(v) => v.reserve_exact(rows),
            CodeRows::U16(v) => v.reserve_exact(rows),
            CodeRows::U32(v) => v.reserve_exact(rows),
        }
    }

    /// Gives back the room made for rows not written.
    pub(crate) fn shrink_to_fit(&mut self) {
        match self {
            CodeRows::U8(v) => v.shrink_to_fit(),
            CodeRows::U16(v) => v.shrink_to_fit(),
            CodeRows::U32(v) => v.shrink_to_fit(),
        }
    }

    /// Bytes held on the heap.
    pub(crate) fn heap_bytes(&self) -> u64 {
        use crate::memory::vec_bytes;
        match self {
            CodeRows::U8(v) => vec_bytes(v),
            CodeRows::U16(v) => vec_bytes(v),
            CodeRows::U32(v) => vec_bytes(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Rows read back as pushed, whatever widths they pass through, and take the width of
        /// their largest code.
        #[test]
        fn codes_read_back_as_pushed(codes in prop::collection::vec(prop_oneof![0u32..300, 0u32..70_000, any::<u32>()], 0..200)) {
            let mut rows = CodeRows::default();
            rows.reserve_exact(3);
            codes.iter().for_each(|&c| rows.push(c));
            prop_assert_eq!(rows.iter().collect::<Vec<_>>(), codes.clone());
            prop_assert_eq!(CodeRows::of(&codes).iter().collect::<Vec<_>>(), codes.clone());
            let max = codes.iter().copied().max().unwrap_or(0);
            let width = match (&rows, &CodeRows::of(&codes)) {
                (CodeRows::U8(_), CodeRows::U8(_)) => 1,
                (CodeRows::U16(_), CodeRows::U16(_)) => 2,
                (CodeRows::U32(_), CodeRows::U32(_)) => 4,
                _ => 0,
            };
            prop_assert_eq!(width, if max <= 255 { 1 } else if max <= 65_535 { 2 } else { 4 });
        }
    }
}
