"""Code the program deploys to run in AWS (Lambda); standard library and boto3 only."""
