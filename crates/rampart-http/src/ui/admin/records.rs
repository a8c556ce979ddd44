//! `/ui/admin/records`: the declared resources' records, as the signed-in admin may see them.
//!
//! Every read and write goes through the record API's own functions (`routes::resources`:
//! `list_page`, `read_record`, `update_record`, `delete_record`) with the admin as the caller:
//! the same access policy, the same scope inside the statement, the same field rules, the same
//! audited refusals. So a rule that does not grant admins an action refuses it here too (403 or
//! 404 page), and an edit is validated exactly like a PATCH.
//!
//! The table's filters are the API's own query parameters (`field=value`, `sort`, `limit`,
//! `cursor`) in a GET form; empty inputs are dropped. Record values are client-written text:
//! every one is rendered by maud, escaped.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rampart_core::resources::{Action, Kind, Resource};
use serde_json::{Map, Value};

use super::{AdminForm, AdminVisitor, query, respond};
use crate::extract::{RecordPath, RequestContext};
use crate::routes::resources::list::list_page;
use crate::routes::resources::{Caller, body, delete_record, read_record, resource, update_record};
use crate::ui::forms::csrf_input;
use crate::{ApiError, AppState};

/// `GET /ui/admin/records`: the declared resources.
pub async fn index(State(state): State<AppState>, AdminVisitor(admin): AdminVisitor) -> Response {
    let content = html! {
        h1 { "Records" }
        @if state.settings.resources.is_empty() {
            p class="muted" { "No resource is declared." }
        }
        ul class="link-list" {
            @for name in state.settings.resources.0.keys() {
                li { a href={ "/ui/admin/records/" (name) } { (name) } }
            }
        }
    };
    respond(&state, &admin, "Records", "/ui/admin/records", content)
}

/// The record's value of `field` as a page shows it.
fn shown(record: &Value, field: &str) -> String {
    match record.get(field) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `GET /ui/admin/records/{resource}?field=&sort=&limit=&cursor=`.
pub async fn list(
    State(state): State<AppState>,
    AdminVisitor(admin): AdminVisitor,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let res = resource(&state, &name)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| ApiError::BadRequest("malformed query string".into()))?;
    // An empty input of the filter form means "no filter on that field".
    let pairs: Vec<(String, String)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let caller = Caller::user(&admin.user);
    let (rows, next) = list_page(&state, &caller, res, &pairs).await?;
    let items: Vec<_> = rows.iter().map(|r| body::render(res, r, caller.principal())).collect();
    let value_of = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_default();
    let next = next.map(|c| {
        let mut kept: Vec<(&str, &str)> =
            pairs.iter().filter(|(k, _)| k != "cursor").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        kept.push(("cursor", &c));
        format!("/ui/admin/records/{}{}", res.name, query(&kept))
    });
    let columns: Vec<&str> = res.fields.iter().map(|f| f.name.as_str()).collect();
    let sortable: Vec<&str> = ["created_at", "updated_at"]
        .into_iter()
        .chain(res.fields.iter().filter(|f| !f.optional).map(|f| f.name.as_str()))
        .collect();
    let content = html! {
        p { a href="/ui/admin/records" { "← All resources" } }
        h1 { (res.name) }
        form method="get" action={ "/ui/admin/records/" (res.name) } class="filters" {
            @for f in &res.fields {
                div class="field" {
                    label for={ "f-" (f.name) } { (f.name) " equals" }
                    input id={ "f-" (f.name) } name=(f.name) type="text" value=(value_of(&f.name)) autocomplete="off";
                }
            }
            div class="field" {
                label for="f-sort" { "Sort by" }
                select id="f-sort" name="sort" {
                    @for col in &sortable {
                        option value=(col) selected[value_of("sort") == *col] { (col) " ascending" }
                        option value={ "-" (col) } selected[value_of("sort") == format!("-{col}")] { (col) " descending" }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        @if items.is_empty() {
            p class="muted" { "No record matches." }
        } @else {
            div class="table-wrap" {
                table {
                    caption class="visually-hidden" { "Records of " (res.name) }
                    thead { tr {
                        th scope="col" { "Id" }
                        @for c in &columns { th scope="col" { (c) } }
                        th scope="col" { "Updated" }
                    } }
                    tbody {
                        @for r in &items {
                            @let id = shown(r, "id");
                            tr {
                                td { a href={ "/ui/admin/records/" (res.name) "/" (id) } { code { (id) } } }
                                @for c in &columns { td { (shown(r, c)) } }
                                td { (shown(r, "updated_at")) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p { a class="button secondary" href=(next) { "Next page" } }
        }
    };
    Ok(respond(&state, &admin, &res.name, "/ui/admin/records", content))
}

/// `GET /ui/admin/records/{resource}/{id}`: the record, an edit form, and delete.
pub async fn show(
    State(state): State<AppState>,
    ctx: RequestContext,
    AdminVisitor(admin): AdminVisitor,
    RecordPath { resource: name, id }: RecordPath,
) -> Result<Response, ApiError> {
    let res = resource(&state, &name)?;
    let caller = Caller::user(&admin.user);
    let record = read_record(&state, &ctx, &caller, res, &id).await?;
    let may_update = caller.scope(res, Action::Update).is_some();
    let may_delete = caller.scope(res, Action::Delete).is_some();
    let content = html! {
        p { a href={ "/ui/admin/records/" (res.name) } { "← " (res.name) } }
        h1 { (res.name) " " code { (id) } }
        dl class="facts" {
            @if let Value::Object(fields) = &record {
                @for (k, _) in fields {
                    dt { (k) } dd { (shown(&record, k)) }
                }
            }
        }
        @if may_update {
            section class="card" aria-labelledby="edit-title" {
                h2 id="edit-title" { "Edit" }
                form method="post" action={ "/ui/admin/records/" (res.name) "/" (id) "/edit" } {
                    (csrf_input(admin.csrf_token()))
                    @for f in &res.fields {
                        div class="field" {
                            label for={ "f-" (f.name) } { (f.name) " (" (f.kind.name()) ")" }
                            input id={ "f-" (f.name) } name=(f.name) type="text" value=(shown(&record, &f.name));
                        }
                    }
                    p class="hint" { "An empty input leaves the field unchanged." }
                    button type="submit" { "Save" }
                }
            }
        } @else {
            p class="notice" { "The access policy does not let admins update " (res.name) " records." }
        }
        @if may_delete {
            section class="card danger-zone" aria-labelledby="delete-title" {
                h2 id="delete-title" { "Delete" }
                form method="post" action={ "/ui/admin/records/" (res.name) "/" (id) "/delete" } {
                    (csrf_input(admin.csrf_token()))
                    button type="submit" class="danger" { "Delete record" }
                }
            }
        } @else {
            p class="notice" { "The access policy does not let admins delete " (res.name) " records." }
        }
    };
    Ok(respond(&state, &admin, &res.name, "/ui/admin/records", content))
}

/// The edit form's text inputs as the JSON body a PATCH would send: each value typed by its
/// declared field (a number parsed, `true`/`false` for booleans), empty inputs left out. A field
/// the resource does not declare stays in, as a string, so the record API refuses it by name.
fn body_of(res: &Resource, form: HashMap<String, String>) -> Result<Map<String, Value>, ApiError> {
    let mut body = Map::new();
    for (name, text) in form.into_iter().filter(|(_, v)| !v.is_empty()) {
        let value = match res.field(&name).map(|f| &f.kind) {
            Some(Kind::Integer { .. }) => {
                text.trim().parse::<i64>().map(Value::from).map_err(|_| not_a(&name, "whole number"))?
            }
            Some(Kind::Number { .. }) => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| not_a(&name, "number"))?,
            Some(Kind::Boolean) => match text.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(not_a(&name, "true or false")),
            },
            _ => Value::String(text),
        };
        body.insert(name, value);
    }
    Ok(body)
}

fn not_a(field: &str, what: &str) -> ApiError {
    ApiError::Validation(vec![crate::error::FieldError::new(field, format!("must be a {what}"))])
}

/// `POST /ui/admin/records/{resource}/{id}/edit`.
pub async fn edit(
    State(state): State<AppState>,
    ctx: RequestContext,
    RecordPath { resource: name, id }: RecordPath,
    AdminForm { admin, form }: AdminForm<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let res = resource(&state, &name)?;
    let body = body_of(res, form)?;
    update_record(&state, &ctx, &Caller::user(&admin.user), res, &id, body).await?;
    Ok(Redirect::to(&format!("/ui/admin/records/{}/{id}", res.name)).into_response())
}

/// `POST /ui/admin/records/{resource}/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    RecordPath { resource: name, id }: RecordPath,
    AdminForm { admin, .. }: AdminForm<super::users::NoFields>,
) -> Result<Response, ApiError> {
    let res = resource(&state, &name)?;
    delete_record(&state, &ctx, &Caller::user(&admin.user), res, &id).await?;
    Ok(Redirect::to(&format!("/ui/admin/records/{}", res.name)).into_response())
}

#[cfg(test)]
mod tests {
    use rampart_core::resources::{Actions, Field};

    use super::*;

    fn field(name: &str, kind: Kind) -> Field {
        Field { name: name.into(), kind, optional: true, default: None, write: None, read: None }
    }

    #[test]
    fn edit_forms_become_typed_patch_bodies() {
        let res = Resource {
            name: "t".into(),
            table: "res_t".into(),
            owner: None,
            fields: vec![
                field("n", Kind::Integer { min: None, max: None }),
                field("r", Kind::Number { min: None, max: None }),
                field("b", Kind::Boolean),
                field("s", Kind::String { min_len: None, max_len: None, pattern: None }),
            ],
            actions: Actions::default(),
            memo: Default::default(),
        };
        let form = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let body = body_of(&res, form(&[("n", "7"), ("r", "0.5"), ("b", "false"), ("s", "<b>"), ("x", "")])).ok();
        let expected = serde_json::json!({ "n": 7, "r": 0.5, "b": false, "s": "<b>" });
        assert_eq!(body.map(Value::Object), Some(expected));
        // An undeclared field is kept, for the record API to refuse by name.
        let body = body_of(&res, form(&[("owner_id", "me")])).ok();
        assert_eq!(body.map(Value::Object), Some(serde_json::json!({ "owner_id": "me" })));
        for bad in [("n", "1.5"), ("r", "NaN"), ("b", "yes")] {
            assert!(body_of(&res, form(&[bad])).is_err(), "{bad:?}");
        }
    }
}
