//! `/ui/admin/keys`: the signing keys, from the key ring's public summary (kid, algorithm, state,
//! dates). The ring's summary is built from public facts only, so no private material can reach
//! this page; rotating is `rampart keys rotate` on the server, not a button here.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use rampart_core::clock::{now_ms, rfc3339};

use super::{AdminVisitor, respond};
use crate::AppState;

/// `GET /ui/admin/keys`.
pub async fn show(State(state): State<AppState>, AdminVisitor(admin): AdminVisitor) -> Response {
    let keys = state.tokens.ring().summary(now_ms());
    let content = html! {
        h1 { "Signing keys" }
        p class="lead" {
            "The keys that sign access tokens, oldest first. The public halves are published at "
            a href="/.well-known/jwks.json" { "/.well-known/jwks.json" } ". Rotate with "
            code { "rampart keys rotate" } "."
        }
        div class="table-wrap" {
            table {
                caption class="visually-hidden" { "Signing keys" }
                thead { tr {
                    th scope="col" { "Key id" } th scope="col" { "Algorithm" } th scope="col" { "State" }
                    th scope="col" { "Created" } th scope="col" { "Signs from" } th scope="col" { "Verifies until" }
                } }
                tbody {
                    @for k in &keys {
                        tr {
                            td { code { (k.kid) } }
                            td { (k.alg) }
                            td { span class={ "badge key-" (k.state.label()) } { (k.state.label()) } }
                            td { (rfc3339(k.created_ms)) }
                            td { (rfc3339(k.signs_from_ms)) }
                            td { @match k.verifies_until { Some(t) => (rfc3339(t)), None => "no successor yet" } }
                        }
                    }
                }
            }
        }
    };
    respond(&state, &admin, "Signing keys", "/ui/admin/keys", content)
}
