from cc_capture.cli.main import main

main()
