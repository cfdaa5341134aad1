-- The columns of purchases, with their types.
DESCRIBE purchases;
