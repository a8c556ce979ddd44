//! `/ui/admin/policy`: the access policy as the server enforces it, the page a security reviewer
//! reads first. Each cell comes from `rampart_core::resources::policy_table`, which asks the
//! record API's own `decide` for a caller of each kind, so the page cannot disagree with it.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use rampart_core::resources::policy_table::{Grant, policy_table};

use super::{AdminVisitor, respond};
use crate::AppState;

/// `GET /ui/admin/policy`.
pub async fn show(State(state): State<AppState>, AdminVisitor(admin): AdminVisitor) -> Response {
    let table = policy_table(&state.settings.resources, &state.settings.roles);
    let content = html! {
        h1 { "Access policy" }
        p class="lead" {
            "For each declared resource and action: who may do it, and over which records. "
            "An undeclared action is open to admins only."
        }
        @if table.resources.is_empty() {
            p class="muted" { "No resource is declared." }
        }
        @for res in &table.resources {
            section class="card" aria-labelledby={ "res-" (res.resource) } {
                h2 id={ "res-" (res.resource) } { (res.resource) }
                p class="muted" {
                    @match &res.owner_column {
                        Some(col) => { "Owner column: " code { (col) } }
                        None => "No owner column: \"owner\" grants nothing here.",
                    }
                }
                div class="table-wrap" {
                    table class="policy" {
                        caption class="visually-hidden" { "Who may do what to " (res.resource) }
                        thead { tr {
                            th scope="col" { "Action" } th scope="col" { "Declared rule" }
                            @for a in &table.audiences { th scope="col" { (a.label()) } }
                        } }
                        tbody {
                            @for row in &res.rows {
                                tr {
                                    th scope="row" { (row.action) }
                                    td { @match &row.declared { Some(r) => code { (r) }, None => span class="muted" { "not declared" } } }
                                    @for g in &row.grants {
                                        td class={ "grant " (class(*g)) } { (g.label()) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(&state, &admin, "Access policy", "/ui/admin/policy", content)
}

fn class(g: Grant) -> &'static str {
    match g {
        Grant::Nobody => "none",
        Grant::OwnRecords => "own",
        Grant::AllRecords => "all",
    }
}
