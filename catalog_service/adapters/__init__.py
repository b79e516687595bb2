"""What the catalog reaches outside itself: its database (``db/``), the account file, the listing cache."""
