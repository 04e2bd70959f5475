"""Task families with verifiable answers (the embedded model's arithmetic word problems)."""
