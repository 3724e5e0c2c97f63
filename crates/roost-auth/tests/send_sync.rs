//! Every built-in can be shared across the broker's tasks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use roost_auth::*;

fn assert_send_sync<T: Send + Sync + 'static>() {}

#[test]
fn every_builtin_is_send_and_sync() {
    assert_send_sync::<PasswordFile>();
    assert_send_sync::<AclFile>();
    assert_send_sync::<JwtAuthenticator>();
    assert_send_sync::<HttpAuthenticator>();
    assert_send_sync::<HttpAuthorizer>();
    assert_send_sync::<ScramAuthenticator>();
    assert_send_sync::<TlsIdentityAuthenticator>();
    assert_send_sync::<BanAuthenticator>();
    assert_send_sync::<BanList>();
    // And they fit the trait objects the broker chains hold.
    fn _authn(_: Box<dyn roost_hooks::Authenticator>) {}
    fn _authz(_: Box<dyn roost_hooks::Authorizer>) {}
    fn _enhanced(_: Box<dyn roost_hooks::EnhancedAuthenticator>) {}
    let _ = |p: PasswordFile, a: AclFile, s: ScramAuthenticator| {
        _authn(Box::new(p));
        _authz(Box::new(a));
        _enhanced(Box::new(s));
    };
}
