//! Control over the key policy: a principal that may both use the key for an enclave and
//! replace the key policy can remove the attestation conditions and then decrypt anywhere.

use super::checks::{Report, covers, denied_without_attestation, granted_by};
use super::document::{Effect, KeyPolicyDocument, Principals, Statement};
use super::pinning::KEY_RECIPIENT_ACTIONS;
use super::{FindingKind, StatementRef};
use crate::policy::key_policy::PrincipalArn;

const PUT_KEY_POLICY: &str = "kms:PutKeyPolicy";

/// Reports an Allow of `kms:PutKeyPolicy` whose principals overlap those of an Allow of a
/// recipient action, in this statement or another. An account principal (`:root` or a bare
/// account id) overlaps every identity of its account, because IAM policies in that account
/// can then grant the action. Conditions on either Allow are not evaluated, so a condition
/// that keeps them apart is not credited. An unconditional Deny of `kms:PutKeyPolicy` to
/// everyone clears the finding.
pub(super) fn check_policy_control(
    document: &KeyPolicyDocument,
    statement: &Statement,
    report: &mut Report,
) {
    if statement.effect != Effect::Allow
        || !covers(&statement.actions, PUT_KEY_POLICY)
        || denied_without_attestation(document, PUT_KEY_POLICY)
    {
        return;
    }

    let user = document.statements.iter().find_map(|other| {
        if other.effect != Effect::Allow {
            return None;
        }
        let action = KEY_RECIPIENT_ACTIONS
            .iter()
            .find(|action| covers(&other.actions, action))?;
        let (admin, recipient) = overlap(&statement.principal, &other.principal)?;
        Some((other, *action, admin, recipient))
    });
    let Some((other, action, admin, recipient)) = user else {
        return;
    };

    let location = if other.index == statement.index {
        "this statement".to_owned()
    } else {
        StatementRef {
            index: other.index,
            sid: other.sid.clone(),
        }
        .to_string()
    };
    report(
        FindingKind::RecipientCanPutKeyPolicy,
        format!(
            "allows {PUT_KEY_POLICY} to {admin} (by {}), and {location} allows {action} to \
             {recipient}, which is the same identity or one that IAM policies of that account \
             can grant; it could replace the key policy and remove the attestation conditions",
            granted_by(&statement.actions, PUT_KEY_POLICY),
        ),
        "name separate administrator roles (not the account root) for key administration, \
         and keep kms:PutKeyPolicy (kms:*, kms:Put*) away from the principals that use the key"
            .to_owned(),
    );
}

/// Returns one pair of overlapping principals, as (from `admins`, from `users`), for the
/// message.
fn overlap(admins: &Principals, users: &Principals) -> Option<(String, String)> {
    match (admins, users) {
        (Principals::Listed(admins), Principals::Listed(users)) => {
            admins.iter().find_map(|admin| {
                users
                    .iter()
                    .find(|user| same_or_contains(admin, user) || same_or_contains(user, admin))
                    .map(|user| (admin.clone(), user.clone()))
            })
        }
        // Everyone and NotPrincipal may include any principal; the audit counts them as overlapping.
        _ => Some((describe(admins), describe(users))),
    }
}

fn describe(principals: &Principals) -> String {
    match principals {
        Principals::Everyone => "everyone (\"*\")".to_owned(),
        Principals::Listed(names) => names.join(", "),
        Principals::AllExcept(names) => format!("everyone except {}", names.join(", ")),
    }
}

/// True when `outer` and `inner` name the same identity, or `outer` names the account that
/// `inner` belongs to.
fn same_or_contains(outer: &str, inner: &str) -> bool {
    if outer.eq_ignore_ascii_case(inner) {
        return true;
    }
    let Ok(inner) = PrincipalArn::parse(inner) else {
        return false;
    };
    if is_account_id(outer) {
        return outer == inner.account();
    }
    let Ok(outer) = PrincipalArn::parse(outer) else {
        return false;
    };
    outer.same_identity(&inner) || (outer.is_account_root() && outer.account() == inner.account())
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}
