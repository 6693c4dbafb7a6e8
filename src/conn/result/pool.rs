//! The allocations of dropped row sets, kept per thread for the next ones.
//!
//! A pipeline keeps up to a thousand results alive at once, beyond the allocator's per-thread
//! cache: each result's allocation then costs about 190 instructions to get and give back
//! (`malloc` and `free` through their slower bins). A dropped row set's box, emptied (its
//! columns, buffers and offsets released at once, as before), waits here instead, up to
//! [`POOL_MAX`] of them (about 128 KiB a thread), and the next row set built on this thread takes
//! it.

use std::cell::RefCell;

use super::{Chunk, Chunks, Fields, RowsData, Tag};

/// The most boxes kept per thread.
const POOL_MAX: usize = 1024;

struct Pool {
    /// The allocations themselves are what is kept, so boxes, not the data.
    #[allow(clippy::vec_box)]
    free: Vec<Box<RowsData>>,
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { free: Vec::new() }) };
}

/// A kept box, emptied, if this thread has one.
#[inline]
pub(super) fn take() -> Option<Box<RowsData>> {
    POOL.try_with(|pool| pool.try_borrow_mut().ok()?.free.pop())
        .ok()
        .flatten()
}

/// Empties `data` (releasing what it holds) and keeps its box for [`take`] when there is room.
/// Only what holds something is reset (inline bytes past a length are never read); a kept box's
/// offsets are empty and inline, and [`Rows::new`](super::Rows::new) sets its columns.
#[inline]
pub(super) fn give(mut data: Box<RowsData>) {
    // Released at once (no placeholder to clone in their place).
    data.cols = None;
    match &mut data.chunks {
        Chunks::One(Chunk::Inline(len, _)) => *len = 0,
        chunks => *chunks = Chunks::NONE,
    }
    // Kept empty and inline: what a row set of a few columns starts with.
    match &mut data.fields {
        Fields::Inline(len, _) => *len = 0,
        fields => *fields = Fields::EMPTY,
    }
    match &mut data.tag {
        Tag::Inline(len, _) => *len = 0,
        tag => *tag = Tag::default(),
    }
    data.nrows = 0;
    data.pending = 0;
    data.value_bytes = 0;
    let _ = POOL.try_with(|pool| {
        let Ok(mut pool) = pool.try_borrow_mut() else {
            return;
        };
        if pool.free.len() < POOL_MAX {
            pool.free.push(data);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::{Column, Rows};
    use super::*;

    #[test]
    fn a_kept_box_comes_back_empty_and_releases_what_it_held() {
        let columns: Arc<[Column]> = Arc::from([Column::new("a", 25)]);
        let mut rows = Rows::new(columns.clone());
        rows.d.nrows = 1;
        rows.d.pending = 1;
        rows.d.value_bytes = 3;
        rows.d.tag = Tag::new("SELECT 1");
        rows.d.fields = Fields::for_columns(8, 4, 256);
        assert_eq!(Arc::strong_count(&columns), 2);
        drop(rows);
        // Its columns are released at once, not when the box is taken again.
        assert_eq!(Arc::strong_count(&columns), 1);
        let other: Arc<[Column]> = Arc::from([Column::new("b", 23), Column::new("c", 23)]);
        let rows = Rows::new(other.clone());
        assert_eq!(rows.columns(), &*other);
        assert_eq!((rows.len(), rows.d.pending, rows.d.value_bytes), (0, 0, 0));
        assert_eq!(rows.command_tag(), "");
        assert!(!rows.is_partial());
        assert!(rows.d.fields.as_slice().is_empty());
        assert!(matches!(rows.d.chunks, Chunks::One(_)));
        assert_eq!(rows.get(0, 0), None);
        // A clone has a box of its own.
        let copy = rows.clone();
        drop(rows);
        assert_eq!(copy.columns(), &*other);
    }

    #[test]
    fn at_most_pool_max_boxes_are_kept() {
        let columns: Arc<[Column]> = Arc::from([Column::new("a", 25)]);
        let many: Vec<Rows> = (0..POOL_MAX + 10)
            .map(|_| Rows::new(columns.clone()))
            .collect();
        drop(many);
        let kept = POOL.with(|pool| pool.borrow().free.len());
        assert!(kept <= POOL_MAX, "{kept}");
        assert_eq!(Arc::strong_count(&columns), 1);
    }
}
