"""The DataBlock recipe and everything that turns files and tables into batches."""
