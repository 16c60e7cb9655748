"""MovieLens data sets: fetching a member's own copy from GroupLens and remembering where it is."""
