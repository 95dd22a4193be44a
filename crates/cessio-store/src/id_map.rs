//! A map by id for `verify`'s state. The writer gives ids in order from the head's
//! counters, so the ids of a table run from 1 to its counter with no gaps: a vector indexed
//! by id holds a value in its own size, where a hash map spends a key, a control byte and
//! the empty half of its table on each (three times the memory for a balance).
//!
//! Ids outside `1..=limit` (only a damaged register has them) go to a sorted map, so a
//! stray id cannot make the vector grow; within the limit the vector grows only as far as
//! the ids seen, so a damaged counter allocates nothing by itself.

use std::collections::BTreeMap;

#[derive(Debug)]
pub struct IdMap<T> {
    /// Slot `i` holds id `i + 1`.
    dense: Vec<Option<T>>,
    limit: i64,
    sparse: BTreeMap<i64, T>,
}

impl<T> Default for IdMap<T> {
    fn default() -> Self {
        IdMap::new(0)
    }
}

impl<T> IdMap<T> {
    /// Ids `1..=limit` are kept in the vector; 0 keeps every id in the sorted map.
    pub fn new(limit: i64) -> Self {
        IdMap {
            dense: Vec::new(),
            limit,
            sparse: BTreeMap::new(),
        }
    }

    fn slot(&self, id: i64) -> Option<usize> {
        if (1..=self.limit).contains(&id) {
            usize::try_from(id - 1).ok()
        } else {
            None
        }
    }

    /// The vector's slot `i`, grown to it if need be.
    fn dense_mut(&mut self, i: usize) -> &mut Option<T> {
        if self.dense.len() <= i {
            self.dense.resize_with(i + 1, || None);
        }
        &mut self.dense[i]
    }

    pub fn insert(&mut self, id: i64, value: T) -> Option<T> {
        match self.slot(id) {
            Some(i) => self.dense_mut(i).replace(value),
            None => self.sparse.insert(id, value),
        }
    }

    pub fn get(&self, id: i64) -> Option<&T> {
        match self.slot(id) {
            Some(i) => self.dense.get(i).and_then(Option::as_ref),
            None => self.sparse.get(&id),
        }
    }

    pub fn get_mut_or_default(&mut self, id: i64) -> &mut T
    where
        T: Default,
    {
        self.get_or_insert_with(id, T::default)
    }

    pub fn get_or_insert_with(&mut self, id: i64, f: impl FnOnce() -> T) -> &mut T {
        match self.slot(id) {
            Some(i) => self.dense_mut(i).get_or_insert_with(f),
            None => self.sparse.entry(id).or_insert_with(f),
        }
    }

    pub fn remove(&mut self, id: i64) -> Option<T> {
        match self.slot(id) {
            Some(i) => self.dense.get_mut(i).and_then(Option::take),
            None => self.sparse.remove(&id),
        }
    }

    /// The highest id held.
    pub fn last_id(&self) -> Option<i64> {
        let sparse_high = self.sparse.keys().next_back().copied().filter(|&id| id > 0);
        let dense = self
            .dense
            .iter()
            .rposition(Option::is_some)
            .and_then(|i| i64::try_from(i + 1).ok());
        sparse_high
            .max(dense)
            .or_else(|| self.sparse.keys().next_back().copied())
    }

    /// Every (id, value) in id order.
    pub fn into_sorted(self) -> impl Iterator<Item = (i64, T)> {
        let mut sparse = self.sparse;
        let above = sparse.split_off(&1);
        let dense = self
            .dense
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| Some((i64::try_from(i + 1).ok()?, v?)));
        sparse.into_iter().chain(dense).chain(above)
    }

    /// Every id held, in order.
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        let below = self.sparse.range(..1).map(|(id, _)| *id);
        let above = self.sparse.range(1..).map(|(id, _)| *id);
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_some())
            .filter_map(|(i, _)| i64::try_from(i + 1).ok());
        below.chain(dense).chain(above)
    }
}

/// A set of ids as one bit each up to `limit`, a sorted set beyond: `verify`'s pending
/// transfers already answered, one per cession of the register.
#[derive(Debug, Default)]
pub struct IdBits {
    bits: Vec<u64>,
    limit: i64,
    other: std::collections::BTreeSet<i64>,
}

impl IdBits {
    pub fn new(limit: i64) -> Self {
        IdBits {
            bits: Vec::new(),
            limit,
            other: std::collections::BTreeSet::new(),
        }
    }

    fn bit(&self, id: i64) -> Option<(usize, u64)> {
        if !(1..=self.limit).contains(&id) {
            return None;
        }
        let i = usize::try_from(id - 1).ok()?;
        Some((i / 64, 1u64 << (i % 64)))
    }
}

impl cessio_core::ledger::ResolvedSet for IdBits {
    fn insert_resolved(&mut self, id: i64) {
        match self.bit(id) {
            Some((word, mask)) => {
                if self.bits.len() <= word {
                    self.bits.resize(word + 1, 0);
                }
                self.bits[word] |= mask;
            }
            None => {
                self.other.insert(id);
            }
        }
    }

    fn is_resolved(&self, id: i64) -> bool {
        match self.bit(id) {
            Some((word, mask)) => self.bits.get(word).is_some_and(|w| w & mask != 0),
            None => self.other.contains(&id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_back_in_order_wherever_they_are_kept() {
        let mut m = IdMap::new(10);
        for id in [7, -3, 2, 50, 0, 10, 11] {
            assert_eq!(m.insert(id, id * 100), None);
        }
        assert_eq!(m.insert(7, 1), Some(700));
        assert_eq!(m.get(50), Some(&5000));
        assert_eq!(m.remove(2), Some(200));
        assert_eq!(m.remove(2), None);
        assert_eq!(m.last_id(), Some(50));
        assert_eq!(m.ids().collect::<Vec<_>>(), vec![-3, 0, 7, 10, 11, 50]);
        *m.get_mut_or_default(3) += 4;
        assert_eq!(
            m.into_sorted().collect::<Vec<_>>(),
            vec![
                (-3, -300),
                (0, 0),
                (3, 4),
                (7, 1),
                (10, 1000),
                (11, 1100),
                (50, 5000)
            ]
        );
    }

    #[test]
    fn bits_hold_ids_within_the_limit_and_a_set_beyond() {
        use cessio_core::ledger::ResolvedSet;
        let mut b = IdBits::new(100);
        for id in [1, 64, 65, 100, 101, -5] {
            b.insert_resolved(id);
        }
        for id in [1, 64, 65, 100, 101, -5] {
            assert!(b.is_resolved(id), "{id}");
        }
        for id in [0, 2, 63, 66, 99, 102] {
            assert!(!b.is_resolved(id), "{id}");
        }
        assert_eq!(b.bits.len(), 2);
    }

    #[test]
    fn a_stray_id_does_not_grow_the_vector() {
        let mut small = IdMap::new(4);
        small.insert(1_000_000_000_000, ());
        assert!(small.dense.is_empty());
        assert_eq!(small.last_id(), Some(1_000_000_000_000));
        let none: IdMap<()> = IdMap::new(0);
        assert_eq!(none.last_id(), None);
    }
}
