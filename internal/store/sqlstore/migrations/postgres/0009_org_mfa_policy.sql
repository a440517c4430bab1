-- An organization may set its own MFA policy (issue 6), overriding the project's mfa.policy for
-- logins into it. '' means it follows the project's policy, so existing organizations keep
-- behaving as before; otherwise 'off', 'optional' or 'required'.

ALTER TABLE organizations ADD COLUMN mfa_policy TEXT NOT NULL DEFAULT '';
