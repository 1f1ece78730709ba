//! The switch that runs these tests on Postgres (`REELAY_TEST_DB=postgres`,
//! scripts/test.sh's second pass) really moves the app's job store there.

use crate::helpers::*;

#[tokio::test]
async fn the_app_keeps_its_rows_in_the_store_the_switch_names() {
    let app = spawn_app().await;
    let url = app.application().settings.database_url();
    assert_eq!(url.starts_with("postgres://"), on_postgres(), "{url}");
    let id = create(&app, &request(5)).await;
    let db = app.db().await;
    let (n,): (i64,) = on_db!(db, p => {
        sqlx::query_as("SELECT COUNT(*) FROM assets WHERE id = $1")
            .bind(&id)
            .fetch_one(p)
            .await
            .unwrap()
    });
    assert_eq!(n, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_postgres_backed_app_without_the_shared_keys_refuses_to_start_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = test_settings(dir.path());
    // Refused before the database is reached: nothing listens on port 1.
    s.database.url = reelay::secret::Secret::new("postgres://reelay@127.0.0.1:1/reelay");
    s.secrets.webhook_token_key = Default::default();
    s.secrets.callback_signing_key = Default::default();
    s.callbacks.secret = Default::default();
    let err = match reelay::startup::Application::build(s).await {
        Ok(_) => panic!("a Postgres-backed app started without the shared keys"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("secrets.webhook_token_key"), "{err}");
    assert!(err.contains("secrets.callback_signing_key"), "{err}");
    assert!(
        !err.contains("job store"),
        "refused before connecting: {err}"
    );
}
