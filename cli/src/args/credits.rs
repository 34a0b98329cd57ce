//! `--credits N [--refill N/day|N/month]`: the credits `create` and `update` give a key.

use heare_auth_core::{parse_amount, Refill, MAX_CREDITS};

use super::usage;
use crate::cmd::NewCredits;
use crate::CliError;

/// The credits `--credits` (`amount`) and `--refill` (`refill`) of `command` give, if any: the
/// amount a whole number from 0 to [`MAX_CREDITS`], the refill as [`Refill::parse`] reads it, and
/// no refill without an amount to start from.
pub(super) fn new_credits(
    command: &str,
    amount: Option<String>,
    refill: Option<String>,
) -> Result<Option<NewCredits>, CliError> {
    let Some(amount) = amount else {
        return match refill {
            None => Ok(None),
            Some(_) => Err(usage(format!(
                "{command}: --refill needs --credits, the balance to start from"
            ))),
        };
    };
    let amount = parse_amount(&amount).ok_or_else(|| {
        usage(format!(
            "{command}: --credits: expected a whole number from 0 to {MAX_CREDITS}, got '{}'",
            amount.escape_debug()
        ))
    })?;
    let refill = refill
        .map(|r| Refill::parse(&r).map_err(|e| usage(format!("{command}: --refill: {e}"))))
        .transpose()?;
    Ok(Some(NewCredits { amount, refill }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use heare_auth_core::Interval;

    fn read(amount: Option<&str>, refill: Option<&str>) -> Result<Option<NewCredits>, String> {
        new_credits("create", amount.map(Into::into), refill.map(Into::into)).map_err(|e| match e {
            CliError::Usage(message) => message,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn an_amount_and_an_optional_refill() {
        assert_eq!(read(None, None), Ok(None));
        assert_eq!(
            read(Some("1000"), None),
            Ok(Some(NewCredits {
                amount: 1000,
                refill: None
            }))
        );
        assert_eq!(
            read(Some("0"), Some("50000/month")),
            Ok(Some(NewCredits {
                amount: 0,
                refill: Some(Refill {
                    amount: 50_000,
                    every: Interval::Month
                })
            }))
        );
        assert_eq!(
            read(Some("1000000000000"), Some("1000000000000/day"))
                .unwrap()
                .map(|c| c.amount),
            Some(MAX_CREDITS)
        );
    }

    #[test]
    fn errors_name_the_flag_and_the_value() {
        assert_eq!(
            read(None, Some("1000/day")),
            Err("create: --refill needs --credits, the balance to start from".into())
        );
        for bad in ["", "-1", "1.5", "1e3", "ten", "1000000000001", "1 000"] {
            assert_eq!(
                read(Some(bad), None),
                Err(format!(
                    "create: --credits: expected a whole number from 0 to 1000000000000, got '{bad}'"
                )),
                "{bad}"
            );
        }
        for bad in ["1000", "1000/week", "x/day", "-5/day"] {
            assert_eq!(
                read(Some("1"), Some(bad)),
                Err(format!(
                    "create: --refill: expected AMOUNT/day or AMOUNT/month like 1000/day, got '{bad}'"
                )),
                "{bad}"
            );
        }
    }
}
