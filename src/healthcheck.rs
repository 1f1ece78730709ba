//! `reelay healthcheck`: asks the local server's `GET /healthz` and says yes
//! or no by exit code, for a container `HEALTHCHECK` (the image has no curl).

use crate::config::Settings;
use std::time::Duration;

/// The `/healthz` URL of the server these settings start, as seen from the
/// same machine: a wildcard listen address is reached on loopback.
pub fn local_url(settings: &Settings) -> anyhow::Result<String> {
    let port = settings.server.port;
    anyhow::ensure!(
        port != 0,
        "server.port is 0 (a free port picked at start): there is no fixed port to check"
    );
    let host = match settings.server.host.as_str() {
        "" | "0.0.0.0" => "127.0.0.1".to_string(),
        "::" | "[::]" => "[::1]".to_string(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_string(),
    };
    Ok(format!("http://{host}:{port}/healthz"))
}

/// GETs `url` once; Ok when it answers 200 within `timeout`.
pub async fn check(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()?;
    let res = client
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url} did not answer: {e}"))?;
    let status = res.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::routing::get;

    async fn serve(status: StatusCode) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/healthz", get(move || async move { (status, "x") }));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (format!("http://{addr}/healthz"), task)
    }

    #[tokio::test]
    async fn a_200_is_healthy_and_a_503_or_no_listener_is_not() {
        let (ok, t1) = serve(StatusCode::OK).await;
        check(&ok, Duration::from_secs(5)).await.unwrap();
        let (down, t2) = serve(StatusCode::SERVICE_UNAVAILABLE).await;
        let err = check(&down, Duration::from_secs(5)).await.unwrap_err();
        assert!(err.to_string().contains("503"), "{err}");
        t1.abort();
        t2.abort();
        // A port nobody listens on: bind one, note it, close it.
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = gone.local_addr().unwrap().port();
        drop(gone);
        let url = format!("http://127.0.0.1:{port}/healthz");
        assert!(check(&url, Duration::from_secs(5)).await.is_err());
    }

    #[test]
    fn a_wildcard_listen_address_is_checked_on_loopback() {
        let mut s = Settings::load_from(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            "test",
        )
        .unwrap();
        s.server.port = 8080;
        for (host, url) in [
            ("0.0.0.0", "http://127.0.0.1:8080/healthz"),
            ("::", "http://[::1]:8080/healthz"),
            ("127.0.0.1", "http://127.0.0.1:8080/healthz"),
            ("::1", "http://[::1]:8080/healthz"),
        ] {
            s.server.host = host.into();
            assert_eq!(local_url(&s).unwrap(), url);
        }
        s.server.port = 0;
        assert!(local_url(&s)
            .unwrap_err()
            .to_string()
            .contains("server.port"));
    }
}
