//! The shard router's placements and its refusals.

use pool_fleet::{ShardError, ShardRouter};

#[test]
fn ranges_place_keys_by_their_bounds_and_refuse_bad_bounds() {
    let router = ShardRouter::ranged(vec!["neg", "low", "high"], vec![0i64, 1000]).unwrap();
    assert_eq!(*router.shard(&-5i64), "neg");
    assert_eq!(*router.shard(&i64::MIN), "neg");
    assert_eq!(*router.shard(&0i64), "low");
    assert_eq!(*router.shard(&999i64), "low");
    assert_eq!(*router.shard(&1000i64), "high");

    let words = ShardRouter::ranged(vec!["a-l", "m-z"], vec!["m"]).unwrap();
    assert_eq!(*words.shard("kiwi"), "a-l");
    assert_eq!(*words.shard("mango"), "m-z");

    let err = ShardRouter::ranged(vec![1, 2], vec![5u32, 6]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "range bounds must be one fewer than the shards: 2 bounds for 2 shards"
    );
    let err = ShardRouter::ranged(vec![1, 2, 3], vec![6u32, 5]).unwrap_err();
    assert_eq!(err.to_string(), "range bounds must strictly increase");
    assert!(matches!(
        ShardRouter::<u8>::hashed(vec![]),
        Err(ShardError::NoShards)
    ));
}

#[test]
fn growing_is_explicit_and_moves_keys_only_to_the_new_shard() {
    let ranged = ShardRouter::ranged(vec!["a", "b"], vec![100u64]).unwrap();
    assert!(
        ranged.with_shard("c").is_err(),
        "a ranged router is grown by a split"
    );
    let split = ranged.with_split(50u64, "c").unwrap();
    assert_eq!(ranged.moves(&60u64, &split), Some((0, 2)));
    assert_eq!(ranged.moves(&40u64, &split), None);
    assert_eq!(ranged.moves(&150u64, &split), None);
    assert!(ranged.with_split(100u64, "d").is_err(), "an existing bound");

    let hashed = ShardRouter::hashed(vec![0, 1, 2, 3]).unwrap();
    assert!(hashed.with_split(5u8, 9).is_err());
    let grown = hashed.with_shard(4).unwrap();
    assert_eq!(hashed.len(), 4, "the old router is left as it was");
    let moved = (0..10_000u32)
        .filter_map(|k| hashed.moves(&k, &grown))
        .inspect(|&(_, to)| assert_eq!(to, 4))
        .count();
    assert!((1_500..2_500).contains(&moved), "{moved} of 10000 moved");
}

#[test]
fn shards_from_urls_name_the_position_of_a_refused_url_not_the_url() {
    let urls = ["ok://one", "bad://user:secret@two"];
    let err = ShardRouter::hashed_from_urls(&urls, |url| {
        if url.starts_with("ok") {
            Ok(url.len())
        } else {
            Err("unsupported scheme")
        }
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "could not make shard 1 from its URL");
    assert!(!format!("{err:?}").contains("secret"));
}
