use http::{Method, Request};
use serde_json::json;

use crate::backend_tests;
use crate::common::TestApp;

backend_tests!(
    register_returns_a_working_token,
    register_rejects_duplicates,
    register_validates_fields,
    login_mints_a_new_token,
    login_rejects_bad_credentials,
    logout_revokes_only_the_token_used,
    tokens_are_checked,
);

async fn register_returns_a_working_token(app: TestApp) {
    let body = app
        .post(
            "/auth/register",
            None,
            json!({ "username": "  alice   smith ", "password": "hunter2hunter2" }),
        )
        .await
        .ok(201);
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    let me = app.get("/users/@me", Some(token)).await.ok(200);
    assert_eq!(me["id"], body["user_id"]);
    assert_eq!(me["username"], "alice smith");
    assert_eq!(me["discriminator"], "0");
    assert_eq!(me["bot"], false);
}

async fn register_rejects_duplicates(app: TestApp) {
    let first = json!({ "username": "bob", "password": "password123", "email": "bob@example.com" });
    app.post("/auth/register", None, first).await.ok(201);
    let same_name = json!({ "username": "bob", "password": "password123" });
    app.post("/auth/register", None, same_name)
        .await
        .form_error(&["username"], "USERNAME_ALREADY_TAKEN");
    let same_email =
        json!({ "username": "bobby", "password": "password123", "email": "bob@example.com" });
    app.post("/auth/register", None, same_email)
        .await
        .form_error(&["email"], "EMAIL_ALREADY_REGISTERED");
}

async fn register_validates_fields(app: TestApp) {
    let short = json!({ "username": "carol", "password": "short" });
    app.post("/auth/register", None, short)
        .await
        .form_error(&["password"], "BASE_TYPE_MIN_LENGTH");
    let bad_name = json!({ "username": "x", "password": "password123" });
    app.post("/auth/register", None, bad_name)
        .await
        .form_error(&["username"], "BASE_TYPE_BAD_LENGTH");
    let forbidden = json!({ "username": "discord fan", "password": "password123" });
    app.post("/auth/register", None, forbidden)
        .await
        .form_error(&["username"], "USERNAME_INVALID_CONTAINS");
    let missing = json!({ "username": "carol" });
    app.post("/auth/register", None, missing)
        .await
        .form_error(&["password"], "BASE_TYPE_REQUIRED");
    let wrong_type = json!({ "username": 5, "password": "password123" });
    app.post("/auth/register", None, wrong_type)
        .await
        .form_error(&["username"], "BASE_TYPE_STRING");
    let bad_email = json!({ "username": "carol", "password": "password123", "email": "nope" });
    app.post("/auth/register", None, bad_email)
        .await
        .form_error(&["email"], "EMAIL_TYPE_INVALID_EMAIL");
}

async fn login_mints_a_new_token(app: TestApp) {
    let user = app.user("dave").await;
    let body = app
        .post(
            "/auth/login",
            None,
            json!({ "login": "dave", "password": "correct horse battery" }),
        )
        .await
        .ok(200);
    let token = body["token"].as_str().unwrap();
    assert_ne!(token, user.token);
    assert_eq!(body["user_id"], user.id.to_string());
    app.get("/users/@me", Some(token)).await.ok(200);
    app.get("/users/@me", Some(&user.token)).await.ok(200);
}

async fn login_rejects_bad_credentials(app: TestApp) {
    app.user("erin").await;
    let wrong = json!({ "login": "erin", "password": "not the password" });
    app.post("/auth/login", None, wrong)
        .await
        .form_error(&["login"], "INVALID_LOGIN");
    let unknown = json!({ "login": "nobody", "password": "whatever123" });
    app.post("/auth/login", None, unknown)
        .await
        .form_error(&["login"], "INVALID_LOGIN");
    app.post("/auth/login", None, json!({ "login": "erin" }))
        .await
        .form_error(&["password"], "BASE_TYPE_REQUIRED");
}

async fn logout_revokes_only_the_token_used(app: TestApp) {
    let user = app.user("frank").await;
    let second = app
        .post(
            "/auth/login",
            None,
            json!({ "login": "frank", "password": "correct horse battery" }),
        )
        .await
        .ok(200);
    let second = second["token"].as_str().unwrap();
    app.send(Method::POST, "/auth/logout", Some(&user.token), None)
        .await
        .no_content();
    app.get("/users/@me", Some(&user.token)).await.error(401, 0);
    app.get("/users/@me", Some(second)).await.ok(200);
    app.send(Method::POST, "/auth/logout", Some(&user.token), None)
        .await
        .error(401, 0);
}

async fn tokens_are_checked(app: TestApp) {
    let user = app.user("grace").await;
    let missing = app.get("/users/@me", None).await.error(401, 0);
    assert_eq!(missing["message"], "401: Unauthorized");
    app.get("/users/@me", Some("garbage")).await.error(401, 0);
    let forged = concord_core::token::TokenKey::new(&[9u8; 32]).mint(user.id, 1);
    app.get("/users/@me", Some(&forged)).await.error(401, 0);
    // Bearer and bare tokens work as well as `Bot`.
    for header in [format!("Bearer {}", user.token), user.token.clone()] {
        let request = Request::get("/api/v10/users/@me")
            .header("authorization", header)
            .body(Default::default());
        app.call(request.unwrap()).await.ok(200);
    }
}
