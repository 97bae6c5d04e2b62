"""The cassette store: cassettes in memory, on disk and journalled, and the record-mode policy
over them."""
