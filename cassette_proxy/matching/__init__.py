"""How a request finds its recording, and what a miss says."""
