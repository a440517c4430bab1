// Package widget serves the embeddable login widget: one dependency-free ES module,
// /login/widget.js, that defines the <latchkey-login> element any page can include.
package widget
