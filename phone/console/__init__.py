"""Console log dialects: message catalogues, writers, the parser of real logs, the diff of two runs."""
