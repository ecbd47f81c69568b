//! `crowdprove status`: a running node's status, from its HTTP API.

use super::ApiAt;

/// Prints the status of the node at `at`: as text (with a distributor's API
/// token, when its data dir holds one), or as the raw JSON with `json`.
pub(crate) fn status(at: &ApiAt, json: bool) -> anyhow::Result<()> {
    let data_dir = &at.data_dir;
    let status =
        tokio::runtime::Runtime::new()?.block_on(node::api::get_json(at.addr()?, "/status"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!(
            "{}",
            node::status_text::render(&status, protocol::Timestamp::now().0)
        );
        // For the operator's own calls (POST /batch).
        if let Ok(token) = node::api::Token::read(data_dir) {
            println!(
                "API token: {}  (send as `Authorization: Bearer <token>`; kept in {})",
                token.as_str(),
                node::api::Token::path(data_dir).display()
            );
        }
    }
    Ok(())
}
