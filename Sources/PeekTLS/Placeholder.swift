// PeekTLS: filled in by its own commit.
