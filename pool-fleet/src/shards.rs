//! [`ShardRouter`]: each shard key belongs to one shard, by a stable hash or by ranges.

use std::borrow::Cow;
use std::fmt;

use crate::error::{BoxError, ShardError};

/// A value that names where a row lives: a tenant id, a user id, an order number.
///
/// Routing reads only [`shard_bytes`](Self::shard_bytes), which must stay the same for a key
/// forever: strings and byte strings are their bytes; integers are big-endian, signed ones
/// with the sign bit flipped, so that byte order is numeric order (what ranges compare) and
/// `5u32` and `5u64` differ (a key's type is part of it: keep one type per key).
pub trait ShardKey {
    /// The key's bytes, hashed or compared to range bounds.
    fn shard_bytes(&self) -> Cow<'_, [u8]>;
}

impl ShardKey for str {
    fn shard_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl ShardKey for String {
    fn shard_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl ShardKey for [u8] {
    fn shard_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl ShardKey for Vec<u8> {
    fn shard_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl<T: ShardKey + ?Sized> ShardKey for &T {
    fn shard_bytes(&self) -> Cow<'_, [u8]> {
        (**self).shard_bytes()
    }
}

macro_rules! unsigned_keys {
    ($($t:ty),*) => {$(
        impl ShardKey for $t {
            fn shard_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.to_be_bytes().to_vec())
            }
        }
    )*};
}

macro_rules! signed_keys {
    ($($t:ty => $u:ty),*) => {$(
        impl ShardKey for $t {
            fn shard_bytes(&self) -> Cow<'_, [u8]> {
                // Flipping the sign bit puts negative numbers before positive ones in byte
                // order.
                let flipped = (*self as $u) ^ (1 << (<$u>::BITS - 1));
                Cow::Owned(flipped.to_be_bytes().to_vec())
            }
        }
    )*};
}

unsigned_keys!(u8, u16, u32, u64, u128);
signed_keys!(i8 => u8, i16 => u16, i32 => u32, i64 => u64, i128 => u128);

/// How keys are placed on shards.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placement {
    /// Jump consistent hash of the key's xxh3 hash over the shards in order.
    Hash,
    /// The shard whose lower bound is the greatest at or below the key; sorted by bound, the
    /// first bound empty (everything).
    Ranges(Vec<(Vec<u8>, usize)>),
}

/// Sends each shard key to its shard: by a stable hash (the same key lands on the same shard in
/// every process, on every platform, in every version of this crate) or by ranges of keys.
///
/// Generic over what a shard is: a [`Pool`](pool_core::Pool), a read/write split pair of pools,
/// a [`Partitions`](crate::Partitions), anything.
///
/// The shards are fixed when the router is made: adding one is explicit
/// ([`with_shard`](Self::with_shard), [`with_split`](Self::with_split)) and gives a new router,
/// so both can be kept while rows move, and [`moves`](Self::moves) says which keys must. With
/// the hash, adding a shard to `n` moves about `1/(n+1)` of the keys, all to the new shard;
/// nothing moves between the old shards. A shard keeps its index in every router grown from
/// this one.
///
/// # Examples
///
/// ```
/// use pool_fleet::ShardRouter;
///
/// // Shards are anything; here, names of databases.
/// let router = ShardRouter::hashed(vec!["db0", "db1", "db2"])?;
/// let shard = *router.shard("customer:42");
/// assert_eq!(shard, *router.shard("customer:42"), "a key stays where it is");
///
/// // A fourth shard: keys that move go to it, and only those.
/// let grown = router.with_shard("db3")?;
/// for id in 0..1000u64 {
///     if let Some((from, to)) = router.moves(&id, &grown) {
///         assert_eq!(to, 3);
///         assert_ne!(from, 3);
///     }
/// }
///
/// // By ranges of ids: below 1000, from 1000 up to 5000, from 5000 on.
/// let ranged = ShardRouter::ranged(vec!["old", "mid", "new"], vec![1000u64, 5000])?;
/// assert_eq!(*ranged.shard(&999u64), "old");
/// assert_eq!(*ranged.shard(&5000u64), "new");
///
/// // A fourth range, from 8000 on, split off the last.
/// let split = ranged.with_split(8000u64, "newest")?;
/// assert_eq!(split.moves(&9000u64, &split), None);
/// assert_eq!(ranged.moves(&9000u64, &split), Some((2, 3)));
/// assert_eq!(ranged.moves(&6000u64, &split), None);
/// # Ok::<(), pool_fleet::ShardError>(())
/// ```
#[derive(Clone)]
pub struct ShardRouter<P> {
    shards: Vec<P>,
    placement: Placement,
}

impl<P> fmt::Debug for ShardRouter<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let placement = match &self.placement {
            Placement::Hash => "hash",
            Placement::Ranges(_) => "ranges",
        };
        f.debug_struct("ShardRouter")
            .field("shards", &self.shards.len())
            .field("placement", &placement)
            .finish()
    }
}

impl<P> ShardRouter<P> {
    /// A router placing keys by a stable hash over `shards`, in this order (the order is part
    /// of the placement: keep it).
    ///
    /// # Errors
    ///
    /// [`ShardError::NoShards`] for an empty list.
    pub fn hashed(shards: Vec<P>) -> Result<Self, ShardError> {
        if shards.is_empty() {
            return Err(ShardError::NoShards);
        }
        Ok(ShardRouter {
            shards,
            placement: Placement::Hash,
        })
    }

    /// A router placing keys by ranges: keys below `bounds[0]` on `shards[0]`, keys from
    /// `bounds[i - 1]` up to (not including) `bounds[i]` on `shards[i]`, keys from the last
    /// bound on on the last shard.
    ///
    /// # Errors
    ///
    /// [`ShardError::NoShards`] for an empty list, [`ShardError::Ranges`] unless there is one
    /// bound fewer than shards and the bounds strictly increase.
    pub fn ranged<K: ShardKey>(shards: Vec<P>, bounds: Vec<K>) -> Result<Self, ShardError> {
        if shards.is_empty() {
            return Err(ShardError::NoShards);
        }
        if bounds.len() + 1 != shards.len() {
            return Err(ShardError::Ranges {
                problem: format!(
                    "must be one fewer than the shards: {} bounds for {} shards",
                    bounds.len(),
                    shards.len()
                ),
            });
        }
        let bounds: Vec<Vec<u8>> = bounds
            .iter()
            .map(|b| b.shard_bytes().into_owned())
            .collect();
        if bounds.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(ShardError::Ranges {
                problem: "must strictly increase".to_owned(),
            });
        }
        let ranges = std::iter::once(Vec::new())
            .chain(bounds)
            .enumerate()
            .map(|(shard, bound)| (bound, shard))
            .collect();
        Ok(ShardRouter {
            shards,
            placement: Placement::Ranges(ranges),
        })
    }

    /// A hashed router over shards made from `urls` by `make`, in this order.
    ///
    /// With the drivers, `make` is one line, for example
    /// `|url| pool_drivers::postgres::Config::from_url(url)?.build_pool_lazy()`.
    ///
    /// # Errors
    ///
    /// [`ShardError::NoShards`] for an empty list; [`ShardError::Shard`] naming the position
    /// (never the URL, which may hold a password) of the first that `make` refused.
    pub fn hashed_from_urls<E: Into<BoxError>>(
        urls: &[impl AsRef<str>],
        mut make: impl FnMut(&str) -> Result<P, E>,
    ) -> Result<Self, ShardError> {
        let shards = urls
            .iter()
            .enumerate()
            .map(|(index, url)| {
                make(url.as_ref()).map_err(|e| ShardError::Shard {
                    index,
                    source: e.into(),
                })
            })
            .collect::<Result<Vec<P>, ShardError>>()?;
        Self::hashed(shards)
    }

    /// The index of the shard `key` belongs to.
    pub fn index_of<K: ShardKey + ?Sized>(&self, key: &K) -> usize {
        let bytes = key.shard_bytes();
        match &self.placement {
            Placement::Hash => {
                let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
                jump_hash(hash, self.shards.len())
            }
            Placement::Ranges(ranges) => {
                // The last range whose lower bound is at or below the key; the first bound is
                // empty, so there always is one.
                let after = ranges.partition_point(|(bound, _)| bound.as_slice() <= &*bytes);
                ranges[after.saturating_sub(1)].1
            }
        }
    }

    /// The shard `key` belongs to.
    pub fn shard<K: ShardKey + ?Sized>(&self, key: &K) -> &P {
        &self.shards[self.index_of(key)]
    }

    /// Every shard, by index.
    pub fn shards(&self) -> &[P] {
        &self.shards
    }

    /// How many shards there are.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Always `false`: a router has at least one shard.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Where `key` moves from and to between this router and `grown` (one grown from it), or
    /// `None` if it stays.
    pub fn moves<K: ShardKey + ?Sized>(&self, key: &K, grown: &Self) -> Option<(usize, usize)> {
        let (from, to) = (self.index_of(key), grown.index_of(key));
        (from != to).then_some((from, to))
    }
}

impl<P: Clone> ShardRouter<P> {
    /// A new hashed router with `shard` added as the last: the keys that move all move to it
    /// (about `1/(n+1)` of them). This router is left as it is.
    ///
    /// # Errors
    ///
    /// [`ShardError::Ranges`] when this router places keys by ranges: say where the new
    /// shard's range starts with [`with_split`](Self::with_split).
    pub fn with_shard(&self, shard: P) -> Result<Self, ShardError> {
        if let Placement::Ranges(_) = self.placement {
            return Err(ShardError::Ranges {
                problem: "decide where a new shard goes: grow a ranged router with with_split"
                    .to_owned(),
            });
        }
        let mut grown = self.clone();
        grown.shards.push(shard);
        Ok(grown)
    }

    /// A new ranged router where the keys from `bound` up to the next bound (or on, for the
    /// last range) belong to the new `shard`, which becomes the last index. This router is
    /// left as it is.
    ///
    /// # Errors
    ///
    /// [`ShardError::Ranges`] when this router places keys by hash, or when `bound` is
    /// already a bound.
    pub fn with_split<K: ShardKey>(&self, bound: K, shard: P) -> Result<Self, ShardError> {
        let Placement::Ranges(ranges) = &self.placement else {
            return Err(ShardError::Ranges {
                problem: "belong to ranged routers: this one places keys by hash".to_owned(),
            });
        };
        let bound = bound.shard_bytes().into_owned();
        let at = ranges.partition_point(|(b, _)| *b < bound);
        if ranges.get(at).is_some_and(|(b, _)| *b == bound) {
            return Err(ShardError::Ranges {
                problem: "must differ: the new bound is already a bound".to_owned(),
            });
        }
        let mut grown = self.clone();
        grown.shards.push(shard);
        let index = grown.shards.len() - 1;
        if let Placement::Ranges(ranges) = &mut grown.placement {
            ranges.insert(at, (bound, index));
        }
        Ok(grown)
    }
}

/// Jump consistent hash (Lamping and Veach, 2014): the bucket in `0..buckets` of `key`, such
/// that going from `n` to `n + 1` buckets moves a key only into the new bucket, and only about
/// `1/(n + 1)` of them.
fn jump_hash(mut key: u64, buckets: usize) -> usize {
    // The constant is the 64-bit linear congruential generator of the paper.
    const MULTIPLIER: u64 = 2_862_933_555_777_941_757;
    let buckets = buckets as i64;
    let (mut bucket, mut next) = (-1i64, 0i64);
    while next < buckets {
        bucket = next;
        key = key.wrapping_mul(MULTIPLIER).wrapping_add(1);
        let step = (1u64 << 31) as f64 / ((key >> 33) + 1) as f64;
        next = ((bucket + 1) as f64 * step) as i64;
    }
    bucket as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hash_moves_keys_only_to_the_new_bucket() {
        for key in 0..10_000u64 {
            let key = xxhash_rust::xxh3::xxh3_64(&key.to_be_bytes());
            for n in 1..20 {
                let (before, after) = (jump_hash(key, n), jump_hash(key, n + 1));
                assert!(before < n);
                assert!(after == before || after == n);
            }
        }
    }

    #[test]
    fn placements_never_change() {
        // Pinned: a change here moves rows of every user of a hashed router.
        let router = ShardRouter::hashed((0..10).collect()).unwrap();
        // The hash is XXH3-64 with seed 0; this is its published value for no input.
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b""), 0x2D06_8005_38D3_94C2);
        let placed: Vec<usize> = ["a", "customer:42", "tenant-7", "", "b", "c"]
            .iter()
            .map(|k| router.index_of(k))
            .collect();
        assert_eq!(placed, PINNED_STRINGS);
        let placed: Vec<usize> = [0u64, 1, 42, 1000, 65_536, u64::MAX]
            .iter()
            .map(|k| router.index_of(k))
            .collect();
        assert_eq!(placed, PINNED_INTEGERS);
    }

    const PINNED_STRINGS: [usize; 6] = [8, 1, 7, 0, 2, 6];
    const PINNED_INTEGERS: [usize; 6] = [1, 7, 7, 7, 6, 4];

    #[test]
    fn signed_keys_sort_numerically() {
        let keys = [i64::MIN, -5, -1, 0, 1, 5, i64::MAX];
        let bytes: Vec<_> = keys.iter().map(|k| k.shard_bytes().into_owned()).collect();
        assert!(bytes.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
