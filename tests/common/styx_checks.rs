//! Checks of our 9P client that hold against any 9P2000 server, shared by the tests against
//! independent servers (p9fs, aio9p, ninep).

use registries::styx::{Fid, OREAD};

/// `name` under `root` read whole on one fid, then by 64 reads of 100 bytes in flight at once
/// over four fids of it: every one must give `want`'s bytes at its offset.
pub async fn reads_on_four_fids(root: &Fid, name: &str, want: &[u8]) {
    let mut fids = Vec::new();
    for _ in 0..4 {
        let mut f = root.walk(&[name]).await.unwrap();
        f.open(OREAD).await.unwrap();
        fids.push(f);
    }
    assert_eq!(fids[0].read_all().await.unwrap(), want);
    let reads = (0..64u64).map(|i| fids[i as usize % 4].read(i * 100, 100));
    for (i, r) in futures_util::future::join_all(reads)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.unwrap().as_ref(), &want[i * 100..i * 100 + 100]);
    }
}

/// The names in `root`'s directory, sorted.
pub async fn listing(root: &Fid) -> Vec<String> {
    let mut d = root.try_clone().await.unwrap();
    d.open(OREAD).await.unwrap();
    let mut names: Vec<String> = d
        .read_dir()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    names
}

/// `n` reads of `fid`, each dropped after one poll (its Tread sent): each is flushed.
pub async fn drop_reads_after_one_poll(fid: &Fid, n: usize) {
    for _ in 0..n {
        let mut read = Box::pin(fid.read(0, 5));
        let _ = futures_util::poll!(&mut read);
        drop(read);
    }
}
