//! Rampart's HTTP surface: router, extractors, middleware, error mapping and the accept loop.

mod cookie;
mod denial_audit;
mod error;
mod extract;
pub mod flows;
pub mod log_context;
pub mod metrics;
mod middleware;
mod openapi;
mod readiness;
pub mod redirect;
mod routes;
mod server;
mod state;
pub mod tls;
pub mod ui;
mod views;

pub use error::ApiError;
pub use middleware::App;
pub use server::serve;
pub use state::{AppState, Services, build_state};

/// The whole application: routes inside the middleware stack, which follows their policies.
pub fn app(state: AppState) -> middleware::App {
    let (router, policies) = routes::router(state.clone());
    middleware::stack(router, policies, &state)
}
