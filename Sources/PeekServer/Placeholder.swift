// PeekServer: filled in by its own commit.
