-- Reserved for another part of issue 13, developed on its own branch: this placeholder keeps the
-- numbering without gaps until that branch's own 0016 migration replaces it on merge. It does nothing.

SELECT 1;
