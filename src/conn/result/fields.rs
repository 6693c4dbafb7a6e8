//! The field offsets of a row set: inline for the few of a small one (no allocation), on the heap
//! beyond.

use crate::protocol::backend::Offsets;

/// Offsets kept inline: a row of up to this many columns, or a few rows of one (as many as fit
/// beside a `Vec` in the same 32 bytes).
pub(super) const INLINE_FIELDS: usize = 6;

/// The offsets of a row set's fields, row-major (see `RowsData::fields`).
#[derive(Clone, Debug)]
pub(super) enum Fields {
    /// The first `len` offsets of the array.
    Inline(u8, [u32; INLINE_FIELDS]),
    Heap(Vec<u32>),
}

impl Fields {
    /// No offsets, inline.
    pub(super) const EMPTY: Fields = Fields::Inline(0, [0; INLINE_FIELDS]);

    #[inline(always)]
    pub(super) fn as_slice(&self) -> &[u32] {
        match self {
            Fields::Inline(len, fields) => fields.get(..*len as usize).unwrap_or_default(),
            Fields::Heap(fields) => fields,
        }
    }

    #[inline(always)]
    pub(super) fn get(&self, i: usize) -> Option<&u32> {
        self.as_slice().get(i)
    }

    /// Offset `i`, looked up in the vector's own bounds when on the heap: a little shorter than
    /// [`get`](Fields::get) where the row set is large.
    #[inline(always)]
    pub(super) fn get_at(&self, i: usize) -> Option<&u32> {
        match self {
            Fields::Heap(fields) => fields.get(i),
            Fields::Inline(len, fields) => {
                // Laid out after the heap's case, which then needs no jump (`std::hint::cold_path`
                // once the MSRV reaches 1.95).
                cold_path();
                fields.get(..*len as usize)?.get(i)
            }
        }
    }

    pub(super) fn extend(&mut self, offsets: impl ExactSizeIterator<Item = u32>) {
        Offsets::reserve(self, offsets.len());
        for offset in offsets {
            Offsets::push(self, offset);
        }
    }

    /// Room for the first `rows` rows of `ncols` columns (at most `max` offsets): inline when one
    /// row fits, else on the heap.
    pub(super) fn for_columns(ncols: usize, rows: usize, max: usize) -> Fields {
        match ncols {
            0..=INLINE_FIELDS => Fields::Inline(0, [0; INLINE_FIELDS]),
            _ => Fields::Heap(Vec::with_capacity((ncols * rows).min(max))),
        }
    }

    /// Moves the offsets to the heap, with room for `additional` more.
    #[cold]
    fn spill(&mut self, additional: usize) {
        if let Fields::Inline(..) = self {
            let inline = self.as_slice();
            let mut heap = Vec::with_capacity((inline.len() + additional).max(2 * INLINE_FIELDS));
            heap.extend_from_slice(inline);
            *self = Fields::Heap(heap);
        }
    }
}

impl Offsets for Fields {
    #[inline(always)]
    fn len(&self) -> usize {
        match self {
            Fields::Inline(len, _) => *len as usize,
            Fields::Heap(fields) => fields.len(),
        }
    }

    #[inline(always)]
    fn reserve(&mut self, additional: usize) {
        match self {
            Fields::Heap(fields) => fields.reserve(additional),
            Fields::Inline(len, _) if *len as usize + additional <= INLINE_FIELDS => {}
            Fields::Inline(..) => self.spill(additional),
        }
    }

    #[inline(always)]
    fn push(&mut self, offset: u32) {
        match self {
            Fields::Heap(fields) => fields.push(offset),
            Fields::Inline(len, fields) => match fields.get_mut(*len as usize) {
                Some(slot) => {
                    *slot = offset;
                    *len += 1;
                }
                None => {
                    self.spill(1);
                    if let Fields::Heap(fields) = self {
                        fields.push(offset);
                    }
                }
            },
        }
    }

    #[inline(always)]
    fn truncate(&mut self, len: usize) {
        match self {
            Fields::Heap(fields) => fields.truncate(len),
            Fields::Inline(n, _) => {
                if len < *n as usize {
                    *n = len as u8;
                }
            }
        }
    }
}

/// Marks the branch that calls it as unlikely (as `std::hint::cold_path`, stable only since 1.95).
#[cold]
#[inline(always)]
fn cold_path() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_move_to_the_heap_past_the_inline_room_and_keep_their_order() {
        let mut fields = Fields::for_columns(1, 2, 256);
        assert!(matches!(fields, Fields::Inline(..)));
        for i in 0..INLINE_FIELDS as u32 {
            fields.push(i);
        }
        assert!(matches!(fields, Fields::Inline(..)));
        fields.truncate(INLINE_FIELDS - 1);
        fields.truncate(INLINE_FIELDS + 5);
        assert_eq!(fields.len(), INLINE_FIELDS - 1);
        fields.reserve(1);
        assert!(matches!(fields, Fields::Inline(..)));
        fields.reserve(2);
        assert!(matches!(fields, Fields::Heap(_)));
        fields.extend([100, 101, 102].into_iter());
        let expected: Vec<u32> = (0..INLINE_FIELDS as u32 - 1).chain(100..103).collect();
        assert_eq!(fields.as_slice(), expected.as_slice());
        assert_eq!(fields.get(INLINE_FIELDS - 1), Some(&100));
        let mut pushed = Fields::for_columns(1, 1, 256);
        for i in 0..20 {
            pushed.push(i);
        }
        assert_eq!(pushed.as_slice(), (0..20).collect::<Vec<u32>>().as_slice());
        assert!(matches!(
            Fields::for_columns(INLINE_FIELDS + 1, 1, 256),
            Fields::Heap(_)
        ));
    }
}
