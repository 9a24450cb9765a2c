"""LRE Bridge: qualified electronic registered letters (LRE) for Zapier, Make and n8n."""
