//! [`IdleList`]: a pool's idle connections, from the longest idle to the last returned, linked
//! through their own entries.
//!
//! Linked rather than kept in a growing buffer, an idle connection costs its entry and nothing
//! besides: the link fits in the allocation the entry has anyway (a unit connection's entry
//! takes 40 of the 48 bytes the allocator hands out for it), while a buffer would add a slot
//! per connection, room to grow into and, each time it grows, a copy left behind. Measured
//! with the `memory` suite on 100,000 idle unit connections: 48 bytes each, the allocation and
//! nothing else.

use crate::connection::Live;

/// Idle connections in the order they were returned. A queue made of two stacks: `newest`
/// takes each connection returned (its top is the last one), `oldest` gives them back from the
/// longest idle (its top is that one). An end found empty is refilled by reversing the other
/// stack into it, so a connection taken in one order only (FIFO or LIFO) is moved at most once
/// between its return and its checkout.
pub(crate) struct IdleList<C> {
    newest: Stack<C>,
    oldest: Stack<C>,
    len: usize,
}

/// Entries linked through `Entry::next`, top first.
struct Stack<C>(Option<Live<C>>);

impl<C> Stack<C> {
    // Both moves overwrite a link they know to be empty; they say so by forgetting it rather
    // than by assigning over it, which would call the entries' drop glue on every move.

    #[inline]
    fn push(&mut self, mut live: Live<C>) {
        let unlinked = std::mem::replace(&mut live.next, self.0.take());
        debug_assert!(
            unlinked.is_none(),
            "an entry outside the idle set is unlinked"
        );
        std::mem::forget(unlinked);
        std::mem::forget(self.0.replace(live));
    }

    #[inline]
    fn pop(&mut self) -> Option<Live<C>> {
        let mut live = self.0.take()?;
        std::mem::forget(std::mem::replace(&mut self.0, live.next.take()));
        Some(live)
    }

    fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The top entry, after refilling this stack from `other` (reversed) if it is empty.
    #[inline]
    fn pop_or_refill(&mut self, other: &mut Stack<C>) -> Option<Live<C>> {
        if self.is_empty() {
            other.reverse_onto(self);
        }
        self.pop()
    }

    /// Moves every entry of `self` onto `to`, reversing their order.
    #[cold]
    fn reverse_onto(&mut self, to: &mut Stack<C>) {
        while let Some(live) = self.pop() {
            to.push(live);
        }
    }
}

impl<C> Drop for Stack<C> {
    /// One entry at a time: dropped as a chain, the entries would drop each other recursively,
    /// one stack frame per connection.
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

impl<C> IdleList<C> {
    pub(crate) const fn new() -> Self {
        IdleList {
            newest: Stack(None),
            oldest: Stack(None),
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds the connection returned last.
    #[inline]
    pub(crate) fn push(&mut self, live: Live<C>) {
        self.newest.push(live);
        self.len += 1;
    }

    /// The connection idle longest.
    #[inline]
    pub(crate) fn pop_oldest(&mut self) -> Option<Live<C>> {
        let live = self.oldest.pop_or_refill(&mut self.newest)?;
        self.len -= 1;
        Some(live)
    }

    /// The connection returned last.
    #[inline]
    pub(crate) fn pop_newest(&mut self) -> Option<Live<C>> {
        let live = self.newest.pop_or_refill(&mut self.oldest)?;
        self.len -= 1;
        Some(live)
    }

    /// The `n` connections idle longest (all of them if there are fewer), in the same order.
    pub(crate) fn split_oldest(&mut self, n: usize) -> IdleList<C> {
        let mut taken = IdleList::new();
        for _ in 0..n {
            match self.pop_oldest() {
                Some(live) => taken.push(live),
                None => break,
            }
        }
        taken
    }
}

impl<C> Default for IdleList<C> {
    fn default() -> Self {
        IdleList::new()
    }
}

/// From the longest idle to the last returned.
impl<C> Iterator for IdleList<C> {
    type Item = Live<C>;

    fn next(&mut self) -> Option<Live<C>> {
        self.pop_oldest()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl<C> ExactSizeIterator for IdleList<C> {}

#[cfg(test)]
mod tests {
    use super::IdleList;
    use crate::connection::{Live, Meta};

    fn live(id: u64) -> Live<()> {
        Live::new((), Meta::new(id, 0, 0, 0))
    }

    fn ids(list: IdleList<()>) -> Vec<u64> {
        list.map(|live| live.meta.id()).collect()
    }

    #[test]
    fn both_ends_keep_the_order_of_return_across_refills() {
        let mut list = IdleList::new();
        for id in 1..=4 {
            list.push(live(id));
        }
        assert_eq!(list.pop_oldest().map(|l| l.meta.id()), Some(1));
        list.push(live(5));
        // 2..4 sit reversed in `oldest`, 5 in `newest`.
        assert_eq!(list.pop_newest().map(|l| l.meta.id()), Some(5));
        assert_eq!(list.pop_newest().map(|l| l.meta.id()), Some(4));
        list.push(live(6));
        assert_eq!(list.len(), 3);
        assert_eq!(
            list.split_oldest(1)
                .map(|l| l.meta.id())
                .collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(ids(list), [3, 6]);
    }

    #[test]
    fn a_long_list_drops_without_recursing() {
        let mut list = IdleList::new();
        for id in 0..1_000_000 {
            list.push(live(id));
        }
        // Half in each stack.
        drop(list.split_oldest(1));
        for id in 0..500_000 {
            list.push(live(id));
        }
        drop(list);
    }
}
