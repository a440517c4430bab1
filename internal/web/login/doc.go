// Package login is the hosted login page: the server-rendered, translated, branded screens a
// browser goes through to sign in, for an OpenID Connect authorization request
// (GET /login?authRequest=…, handed over by internal/oidcprovider) or in SSOJet's legacy
// widget mode (GET /login?client_id=…&redirect_uri=…). It drives the login services on the
// server, so that no token ever reaches the page's JavaScript, and works without JavaScript
// for the email-code, magic-link, SMS-code and password methods.
package login
