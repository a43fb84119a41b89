//! File I/O runs on a bounded pool (`server.blocking_threads`): a burst of concurrent uploads
//! to the local store queues on it instead of growing the process by a thread per write
//! (tokio's own cap is 512, and every thread keeps allocator pages of its own).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;

const SECRET: &str = "file-io-threads-test-secret-0123456789abcd";
const UPLOADS: usize = 24;
const SIZE: usize = 4 << 20;

/// Threads of the gateway's service runtime: its workers and its file-I/O pool.
fn runtime_threads(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == "gateway")
        .count()
}

/// The most runtime threads seen while `UPLOADS` concurrent PUTs of `SIZE` bytes run, after
/// checking that every one was stored whole.
async fn peak_threads_during_a_burst(blocking_threads: usize) -> usize {
    let gw = Arc::new(Gateway::start(GatewayOpts {
        env: vec![("PRESIGN_GATEWAY_SECRET".into(), SECRET.into())],
        server_yaml: format!("  blocking_threads: {blocking_threads}\n"),
        ..Default::default()
    }));
    let pid = gw.child.id();
    let (done, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let watcher = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(runtime_threads(pid), Ordering::Relaxed);
                std::thread::yield_now();
            }
        })
    };
    let puts: Vec<_> = (0..UPLOADS)
        .map(|i| {
            let gw = gw.clone();
            tokio::spawn(async move {
                let url = gw.local_put_url(SECRET, &format!("uploads/user/12/burst-{i}.mp4"), "video/mp4");
                let body = vec![i as u8; SIZE];
                let r = client().put(url).header("content-type", "video/mp4").body(body).send().await;
                r.map(|r| r.status().as_u16()).unwrap_or(0)
            })
        })
        .collect();
    for (i, p) in puts.into_iter().enumerate() {
        assert_eq!(p.await.expect("PUT task"), 200, "upload {i}");
    }
    done.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher");
    for i in 0..UPLOADS {
        let stored =
            std::fs::metadata(gw.data_dir().join("objects").join(format!("uploads/user/12/burst-{i}.mp4")));
        assert_eq!(stored.map(|m| m.len() as usize).ok(), Some(SIZE), "upload {i} stored whole");
    }
    peak.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_uploads_stays_on_the_capped_pool() {
    // The harness runs 2 workers; the cap adds at most 2 file-I/O threads.
    let capped = peak_threads_during_a_burst(2).await;
    assert!((1..=4).contains(&capped), "2 workers + at most 2 file-I/O threads, saw {capped}");
    // The same burst on a wide pool does spread over more threads: the cap is what held it.
    let wide = peak_threads_during_a_burst(64).await;
    eprintln!("runtime threads at the peak of the burst: {capped} capped at 2, {wide} capped at 64");
    assert!(wide > 4, "the burst should need more than 2 file-I/O threads when it may, saw {wide}");
}
