//! Who makes a change: the name written to `created_by` and `updated_by`.

/// `HEARE_AUTH_ACTOR` when set and not blank; otherwise `USER@host`, the user from `USER` or
/// else `LOGNAME`, and `unknown` for a user or host that cannot be found.
pub fn actor(
    env: impl Fn(&str) -> Option<String>,
    hostname: impl FnOnce() -> Option<String>,
) -> String {
    let given = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(actor) = given("HEARE_AUTH_ACTOR") {
        return actor;
    }
    let user = given("USER").or_else(|| given("LOGNAME"));
    let host = hostname()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    format!(
        "{}@{}",
        user.as_deref().unwrap_or("unknown"),
        host.as_deref().unwrap_or("unknown")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn host() -> Option<String> {
        Some("build-01\n".into())
    }

    #[test]
    fn the_actor_variable_wins_then_user_at_host() {
        let all = [
            ("HEARE_AUTH_ACTOR", "deploy-bot"),
            ("USER", "ann"),
            ("LOGNAME", "bob"),
        ];
        assert_eq!(actor(env(&all), || panic!("host read")), "deploy-bot");
        assert_eq!(actor(env(&all[1..]), host), "ann@build-01");
        assert_eq!(actor(env(&all[2..]), host), "bob@build-01");
        let blank = [("HEARE_AUTH_ACTOR", " "), ("USER", ""), ("LOGNAME", "bob")];
        assert_eq!(actor(env(&blank), host), "bob@build-01");
    }

    #[test]
    fn unknown_when_nothing_says() {
        assert_eq!(actor(env(&[]), || None), "unknown@unknown");
        assert_eq!(
            actor(env(&[("USER", "ann")]), || Some("\n".into())),
            "ann@unknown"
        );
    }
}
