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
