//! Reading the gateway's `/metrics`.

use super::Gateway;

/// The whole text exposition of the gateway's `/metrics`.
async fn metrics_text(gw: &Gateway) -> String {
    super::client().get(gw.metrics_url("/metrics")).send().await.expect("metrics").text().await.expect("body")
}

/// The value of one series, e.g. `presign_auth_cache_total{result="hit"}`; 0 when absent.
pub async fn metric(gw: &Gateway, series: &str) -> f64 {
    let text = metrics_text(gw).await;
    value_in(&text, series)
}

/// The value of `series` in a text exposition; 0 when absent.
pub fn value_in(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .filter_map(|v| v.trim().parse().ok())
        .next()
        .unwrap_or(0.0)
}

/// The sum of every series of metric `name` (all its label sets).
pub async fn metric_sum(gw: &Gateway, name: &str) -> f64 {
    let text = metrics_text(gw).await;
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .sum()
}
