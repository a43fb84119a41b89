//! The mint route's application work, stage by stage, without the network:
//! auth (SHA-256 of the key), parse (JSON body), mint (key + SigV4 presign), render (JSON).
//! Run: `cargo bench --bench mint`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use presign_gateway::bench::{mint, ApiKeys, AuthStyle, Dialect};
use presign_gateway::config::{ApiKeyConfig, StorageConfig};
use presign_gateway::hash_key;
use presign_gateway::store::{BaseUrl, Storage};

const BODY: &[u8] =
    br#"{"filename":"cover.png","content_type":"image/png","file_size":524288,"expires_in":900}"#;

fn bench(c: &mut Criterion) {
    let keys = ApiKeys::from_config(&[ApiKeyConfig {
        id: "demo".into(),
        sha256: hash_key("demo-key"),
        user_id: 12,
        rate_limit_per_sec: None,
    }]);
    let dir = std::env::temp_dir().join("presign-gateway-bench-mint");
    let yaml = format!("local:\n  root: {}\n", dir.display());
    let storage_cfg: StorageConfig = serde_yaml::from_str(&yaml).expect("storage yaml");
    let storage = Storage::from_config(&storage_cfg).expect("storage");
    let base = BaseUrl::from_host("127.0.0.1:8080", false).expect("base");
    let caller = keys.authenticate(Some(b"Bearer demo-key"), AuthStyle::Bearer).expect("auth").clone();
    let input = Dialect::ApiMall.parse(BODY, &caller).expect("parse");
    let now = time::OffsetDateTime::now_utc();
    let minted = mint(&storage, &base, &caller, &input, now);

    let mut g = c.benchmark_group("mint_route");
    g.bench_function("auth", |b| {
        b.iter(|| keys.authenticate(black_box(Some(b"Bearer demo-key")), AuthStyle::Bearer).is_ok())
    });
    g.bench_function("parse", |b| b.iter(|| Dialect::ApiMall.parse(black_box(BODY), &caller).is_ok()));
    g.bench_function("mint", |b| b.iter(|| mint(&storage, &base, &caller, black_box(&input), now).key.len()));
    g.bench_function("render", |b| {
        b.iter(|| Dialect::ApiMall.render_success(black_box(&minted), "req_01HQ9M7J7X9P7Y8T6W5V4U3S2R").len())
    });
    g.bench_function("all", |b| {
        b.iter(|| {
            let caller = keys.authenticate(Some(b"Bearer demo-key"), AuthStyle::Bearer).expect("auth");
            let input = Dialect::ApiMall.parse(black_box(BODY), caller).expect("parse");
            let m = mint(&storage, &base, caller, &input, now);
            Dialect::ApiMall.render_success(&m, "req_01HQ9M7J7X9P7Y8T6W5V4U3S2R").len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
