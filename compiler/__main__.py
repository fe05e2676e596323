from skewless.cli.main import main

main()
